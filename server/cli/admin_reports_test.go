package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports/reportstest"
)

func TestEnrolCodeCommands(t *testing.T) {
	h := reportstest.Start(t, "")
	ctx := context.Background()
	run := func(path string, args ...string) (string, error) {
		var out bytes.Buffer
		err := admin[path].Run(ctx, h.Hub, args, &out)
		return out.String(), err
	}
	out, err := run("enrol-code create", "org-a", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Code, ID, Org string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Code, "dtr-") || created.Org != "org-a" {
		t.Fatalf("create: %q %v", out, err)
	}
	if _, err := run("enrol-code create", "no-such-org"); err == nil {
		t.Fatal("code for an unknown organisation")
	}
	if _, err := run("enrol-code create", "org-b"); err != nil {
		t.Fatal(err)
	}
	list, err := run("enrol-code list", "org-a")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, created.ID) || strings.Contains(list, created.Code) || strings.Contains(list, "org-b") {
		t.Fatalf("list shows the wrong codes or the code itself:\n%s", list)
	}
	// Revoke by the code itself, then the list says so.
	if out, err := run("enrol-code revoke", created.Code); err != nil || !strings.Contains(out, created.ID) {
		t.Fatalf("revoke: %q %v", out, err)
	}
	js, _ := run("enrol-code list", "--json")
	var codes []struct {
		ID        string `json:"id"`
		RevokedAt string `json:"revoked_at"`
	}
	json.Unmarshal([]byte(js), &codes)
	if len(codes) != 2 {
		t.Fatalf("list --json: %s", js)
	}
	for _, c := range codes {
		if (c.ID == created.ID) != (c.RevokedAt != "") {
			t.Fatalf("revocation not shown: %s", js)
		}
	}
	if _, err := run("enrol-code revoke", "nope"); err == nil {
		t.Fatal("revoked an unknown code")
	}
}

func TestEnrolCodeLimitsFlags(t *testing.T) {
	h := reportstest.Start(t, "")
	ctx := context.Background()
	run := func(path string, args ...string) (string, error) {
		var out bytes.Buffer
		err := admin[path].Run(ctx, h.Hub, args, &out)
		return out.String(), err
	}
	out, err := run("enrol-code create", "org-a", "--devices", "2", "--expires", "30d", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Code, ID   string
		MaxDevices int64  `json:"max_devices"`
		ExpiresAt  string `json:"expires_at"`
	}
	json.Unmarshal([]byte(out), &created)
	exp, err := time.Parse(time.RFC3339, created.ExpiresAt)
	if err != nil || created.MaxDevices != 2 || exp.Sub(time.Now()) < 29*24*time.Hour || exp.Sub(time.Now()) > 31*24*time.Hour {
		t.Fatalf("create with limits: %s", out)
	}
	for _, bad := range [][]string{
		{"org-a", "--devices", "0"},
		{"org-a", "--expires", "soon"},
		{"org-a", "--expires", "-3d"},
		{"org-a", "--per-hour", "0"},
	} {
		if _, err := run("enrol-code create", bad...); err == nil {
			t.Errorf("create %v accepted", bad)
		}
	}
	if out, err := run("enrol-code revoke", created.ID, "--devices"); err != nil || !strings.Contains(out, "0 devices revoked") {
		t.Fatalf("revoke --devices: %q %v", out, err)
	}
	list, _ := run("enrol-code list")
	if !strings.Contains(list, "LIMIT") || !strings.Contains(list, created.ID) {
		t.Fatalf("list:\n%s", list)
	}
}
