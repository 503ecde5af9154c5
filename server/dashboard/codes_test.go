package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/reports"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
)

// withCodes gives the dashboard a real reports service on its database.
func withCodes(t *testing.T, svc **reports.Service) func(*Options) {
	return func(o *Options) {
		s, err := reports.Open(context.Background(), o.DB, reports.Config{IssuerName: "test-hub", Now: o.Now,
			Document: func() *whitelist.Document { return o.Catalog().Document() }})
		if err != nil {
			t.Fatal(err)
		}
		*svc, o.Codes = s, s
	}
}

var newCodeRE = regexp.MustCompile(`id="new-code">(dtr-[^<]+)<`)

// TestCodesFromTheDashboard is issue 18's acceptance through the pages: a
// code made with a limit of 2 devices enrols 2 and refuses the third, the
// refusal shows as unusual to the organisation's admins, and revoking the
// code with its devices stops their token requests.
func TestCodesFromTheDashboard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var svc *reports.Service
		e := newEnv(t, db, withCodes(t, &svc))
		admin := e.signIn("north-admin@example.org")
		if r := admin.get("/codes"); r.code != 200 || !strings.Contains(r.body, `href="/codes"`) {
			t.Fatalf("codes page: %d", r.code)
		}
		r := admin.post("/codes", url.Values{"org": {"north"}, "devices": {"2"}, "per_hour": {"10"}, "expires_days": {"7"}})
		m := newCodeRE.FindStringSubmatch(r.body)
		if r.code != 200 || m == nil {
			t.Fatalf("create: %d, no code shown", r.code)
		}
		code := m[1]
		if again := admin.get("/codes"); strings.Contains(again.body, code) {
			t.Fatal("the code is shown again after its creation")
		}
		var creds []string
		for range 2 {
			en, err := svc.Enrol(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			creds = append(creds, en.DeviceCredential)
		}
		if _, err := svc.Enrol(ctx, code); err == nil || !strings.Contains(err.Error(), "all the devices") {
			t.Fatalf("third device: %v, want refused", err)
		}
		codes, _ := svc.ListCodes(ctx, "north")
		if len(codes) != 1 {
			t.Fatalf("codes: %+v", codes)
		}
		id := codes[0].ID
		page := admin.get("/codes")
		if !strings.Contains(page.body, "Unusual enrolment for code "+id) || !strings.Contains(page.body, "govuk-tag--red") {
			t.Fatal("the refused enrolment is not shown as unusual")
		}
		if ov := admin.get("/"); !strings.Contains(ov.body, `id="unusual-codes"`) || !strings.Contains(ov.body, `href="/codes/`+id+`"`) {
			t.Fatal("the overview does not show the unusual code to the org's admin")
		}
		if ov := e.signIn("north-viewer@example.org").get("/"); strings.Contains(ov.body, `id="unusual-codes"`) {
			t.Fatal("a viewer's overview shows enrolment codes")
		}
		detail := admin.get("/codes/" + id)
		if detail.code != 200 || !strings.Contains(detail.body, "Revoke the code and its 2 devices") || !strings.Contains(detail.body, "<td class=\"govuk-table__cell\">40</td>") {
			t.Fatalf("detail: %d", detail.code)
		}
		for _, c := range creds {
			if _, _, err := svc.SignRequests(ctx, c, nil); !isStatus(err, 400) {
				t.Fatalf("before revocation: %v, want the empty batch refused (400)", err)
			}
		}
		r = admin.post("/codes/"+id+"/revoke", url.Values{"devices": {"1"}})
		if r.code != 200 || !strings.Contains(r.body, "2 of its devices") {
			t.Fatalf("revoke: %d", r.code)
		}
		for _, c := range creds {
			if _, _, err := svc.SignRequests(ctx, c, nil); !isStatus(err, 403) {
				t.Fatalf("after revocation: %v, want 403", err)
			}
		}
		got, _ := svc.GetCode(ctx, id)
		if got.RevokedAt == "" || got.Revoked != 2 || got.Active != 0 {
			t.Fatalf("after revocation: %+v", got)
		}
		if _, err := svc.Enrol(ctx, code); err == nil {
			t.Fatal("a revoked code enrolled a device")
		}
		audit := admin.get("/audit")
		for _, want := range []string{"Enrolment code created", "Enrolment code and its devices revoked"} {
			if !strings.Contains(audit.body, want) {
				t.Errorf("audit lacks %q", want)
			}
		}
		// Welsh, too.
		if cy := admin.get("/codes/" + id + "?lang=cy"); !strings.Contains(cy.body, "Dyfeisiau a defnydd tocynnau") {
			t.Error("the code page is not in Welsh")
		}
	})
}

func isStatus(err error, status int) bool {
	var re *reports.RefusedError
	return errors.As(err, &re) && re.Status == status
}

// TestCodeRoleRules crafts requests that the pages never make: only admins
// reach the codes pages, and an organisation admin can neither make, read
// nor revoke another organisation's codes.
func TestCodeRoleRules(t *testing.T) {
	ctx := context.Background()
	var svc *reports.Service
	e := newEnv(t, storetest.SQLite(t), withCodes(t, &svc))
	_, southID, err := svc.CreateCodeWith(ctx, "south", reports.Limits{Devices: 3, PerHour: 3})
	if err != nil {
		t.Fatal(err)
	}
	sector, orgAdmin := e.signIn("sector@example.org"), e.signIn("north-admin@example.org")
	northViewer, viewer := e.signIn("north-viewer@example.org"), e.signIn("viewer@example.org")
	mk := url.Values{"org": {"south"}, "devices": {"2"}, "per_hour": {"2"}}
	cases := []struct {
		name         string
		b            *browser
		method, path string
		form         url.Values
		want         int
	}{
		{"viewer cannot list codes", northViewer, "GET", "/codes", nil, 403},
		{"sector viewer cannot list codes", viewer, "GET", "/codes", nil, 403},
		{"viewer cannot create", viewer, "POST", "/codes", url.Values{"org": {"north"}, "devices": {"2"}, "per_hour": {"2"}}, 403},
		{"org admin cannot create for another org", orgAdmin, "POST", "/codes", mk, 403},
		{"org admin cannot read another org's code", orgAdmin, "GET", "/codes/" + southID, nil, 404},
		{"org admin cannot revoke another org's code", orgAdmin, "POST", "/codes/" + southID + "/revoke", url.Values{"devices": {"1"}}, 404},
		{"viewer cannot revoke", northViewer, "POST", "/codes/" + southID + "/revoke", nil, 403},
		{"bad device count", orgAdmin, "POST", "/codes", url.Values{"org": {"north"}, "devices": {"0"}, "per_hour": {"2"}}, 400},
		{"bad expiry", orgAdmin, "POST", "/codes", url.Values{"org": {"north"}, "devices": {"2"}, "per_hour": {"2"}, "expires_days": {"-1"}}, 400},
		{"unknown org", sector, "POST", "/codes", url.Values{"org": {"nowhere"}, "devices": {"2"}, "per_hour": {"2"}}, 400},
		{"sector admin reads any code", sector, "GET", "/codes/" + southID, nil, 200},
		{"missing CSRF token", sector, "POST", "/codes/" + southID + "/revoke", url.Values{"csrf": {"x"}}, 403},
	}
	for _, c := range cases {
		var r resp
		if c.method == "GET" {
			r = c.b.get(c.path)
		} else {
			c.b.get("/")
			r = c.b.post(c.path, c.form)
		}
		if r.code != c.want {
			t.Errorf("%s: %s %s = %d, want %d", c.name, c.method, c.path, r.code, c.want)
		}
	}
	if got, _ := svc.GetCode(ctx, southID); got.RevokedAt != "" {
		t.Fatal("a refused request revoked a code")
	}
	if codes, _ := svc.ListCodes(ctx, ""); len(codes) != 1 {
		t.Fatalf("a refused request made a code: %d codes", len(codes))
	}
	if r := orgAdmin.get("/codes"); strings.Contains(r.body, southID) {
		t.Fatal("an org admin's codes page lists another organisation's code")
	}
	if r := northViewer.get("/"); strings.Contains(r.body, `href="/codes"`) {
		t.Fatal("a viewer is offered the codes page")
	}
	if r := sector.post("/codes/"+southID+"/revoke", nil); r.code != http.StatusOK {
		t.Fatalf("sector admin revokes: %d", r.code)
	}
}
