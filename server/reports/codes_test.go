package reports_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports"
	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestCodeLimits is issue 18's acceptance from outside, over real HTTP on
// both engines: a code limited to 2 devices enrols 2 and refuses the third;
// revoking it with its devices stops their token requests with a reason the
// helper recognises; expiry and the hourly rate refuse too, and every
// refusal is counted for the dashboard.
func TestCodeLimits(t *testing.T) {
	engines := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "" },
		"postgres": func(t *testing.T) string { return storetest.PostgresDSN(t) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) { runCodeLimits(t, reportstest.Start(t, engines[name](t))) })
	}
}

func runCodeLimits(t *testing.T, h *reportstest.Hub) {
	ctx := context.Background()
	svc, err := h.OpenReports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, id, err := svc.CreateCodeWith(ctx, "org-a", reports.Limits{Devices: 2, PerHour: 10})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := svc.CreateCode(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	a, b := enrol(t, h, code), enrol(t, h, code)
	bystander := enrol(t, h, other)
	st, out := do(t, "POST", h.URL+"/api/v1/enrol", "", mustJSON(map[string]string{"code": code}))
	if st != 403 || !strings.Contains(out["error"].(string), "all the devices") {
		t.Fatalf("third device: %d %v, want 403 with a reason", st, out)
	}
	for _, c := range []*client{a, b, bystander} {
		if _, st := c.tokens(2); st != 200 {
			t.Fatalf("tokens before revocation: %d", st)
		}
	}

	c, err := svc.GetCode(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Uses != 2 || c.Active != 2 || c.MaxDevices != 2 || c.TokensToday != 4 || c.Tokens30d != 4 || c.Enrolled24h != 2 || c.Refused24h != 1 || !c.Unusual() {
		t.Fatalf("counts: %+v", c)
	}

	// Revoking the code alone stops enrolment; its devices keep working.
	if _, err := svc.RevokeCode(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, st := a.tokens(1); st != 200 {
		t.Fatalf("device after the code alone was revoked: %d", st)
	}
	// With its devices: both are refused, with the reason the helper reads;
	// a device of another code is not.
	rc, err := svc.RevokeCode(ctx, code, true)
	if err != nil || rc.Revoked != 2 {
		t.Fatalf("revoke devices: %+v %v", rc, err)
	}
	for _, c := range []*client{a, b} {
		st, out := do(t, "POST", h.URL+"/api/v1/tokens", c.cred, mustJSON(map[string]any{"token_requests": []string{"AAAA"}}))
		if st != 403 || out["reason"] != reports.ReasonDeviceRevoked || !strings.Contains(out["error"].(string), "enrol it again") {
			t.Fatalf("revoked device's token request: %d %v", st, out)
		}
	}
	if _, st := bystander.tokens(1); st != 200 {
		t.Fatalf("another code's device: %d", st)
	}
	if c, _ := svc.GetCode(ctx, id); c.Active != 0 || c.Revoked != 2 || c.RevokedAt == "" {
		t.Fatalf("after revocation: %+v", c)
	}

	// Rate: the third enrolment in one hour is refused with 429 and a
	// Retry-After within the hour.
	rated, rid, err := svc.CreateCodeWith(ctx, "org-b", reports.Limits{Devices: 10, PerHour: 2})
	if err != nil {
		t.Fatal(err)
	}
	enrol(t, h, rated)
	enrol(t, h, rated)
	if st, out := do(t, "POST", h.URL+"/api/v1/enrol", "", mustJSON(map[string]string{"code": rated})); st != 429 || !strings.Contains(out["error"].(string), "this hour") {
		t.Fatalf("over the rate: %d %v", st, out)
	}
	// Raising the limits lets it go on.
	if err := svc.SetLimits(ctx, rid, reports.Limits{Devices: 10, PerHour: 3}); err != nil {
		t.Fatal(err)
	}
	enrol(t, h, rated)

	// Expiry: a code whose expiry has passed is refused with its reason.
	exp, eid, err := svc.CreateCodeWith(ctx, "org-b", reports.Limits{Devices: 5, PerHour: 5, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.DB.ExecContext(ctx, `UPDATE enrol_codes SET expires_at = ? WHERE id = ?`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), eid); err != nil {
		t.Fatal(err)
	}
	if st, out := do(t, "POST", h.URL+"/api/v1/enrol", "", mustJSON(map[string]string{"code": exp})); st != 401 || !strings.Contains(out["error"].(string), "expired") {
		t.Fatalf("expired code: %d %v", st, out)
	}
}

func TestLimitsRefused(t *testing.T) {
	h := reportstest.Start(t, "")
	svc, err := h.OpenReports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]reports.Limits{
		"no devices":     {Devices: 0, PerHour: 1},
		"too many":       {Devices: reports.MaxCodeDevices + 1, PerHour: 1},
		"no rate":        {Devices: 1, PerHour: 0},
		"expired":        {Devices: 1, PerHour: 1, Expires: time.Now().Add(-time.Second)},
		"negative count": {Devices: -3, PerHour: 1},
	} {
		if _, _, err := svc.CreateCodeWith(context.Background(), "org-a", l); !errors.Is(err, reports.ErrBadLimits) {
			t.Errorf("%s: %v, want ErrBadLimits", name, err)
		}
	}
	if err := svc.SetLimits(context.Background(), "nope", reports.Limits{Devices: 1, PerHour: 1}); !errors.Is(err, reports.ErrUnknownCode) {
		t.Errorf("limits of an unknown code: %v", err)
	}
}
