package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/shared/whitelist"
)

// signedWhitelist serves the data folder with a fresh hub and fetches the
// whitelist and the keys, verifying one with the other as a helper does.
func signedWhitelist(t *testing.T, dir string) *whitelist.Document {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := hub.Open(ctx, hub.Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	fetch := func(path string, v any) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || json.Unmarshal(b, v) != nil {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	var keys struct {
		WhitelistKeys []whitelist.PublicKey `json:"whitelist_keys"`
	}
	fetch("/api/v1/keys", &keys)
	var trusted []ed25519.PublicKey
	for _, k := range keys.WhitelistKeys {
		pub, err := whitelist.ParsePublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, pub)
	}
	var env whitelist.Envelope
	fetch("/api/v1/whitelist", &env)
	doc, _, err := whitelist.Verify(&env, trusted)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestAgreementAcceptance is the acceptance check: with the example
// organisations, after `agreement propose whereby --by example-borough` and
// `agreement endorse` by example-borough and example-health, the signed
// whitelist carries an agreement for whereby endorsed by exactly those two.
func TestAgreementAcceptance(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := adminRun(t, dir, "catalog", "import", "--examples"); code != 0 {
		t.Fatal(errs)
	}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agreement", "list"}, 0, "No agreements proposed yet."},
		{[]string{"agreement", "propose", "whereby"}, 1, "--by ORG is required"},
		{[]string{"agreement", "propose", "whereby", "--by", "example-borough", "--note", "No install, works for guests"}, 0, "the signed whitelist is unchanged"},
		{[]string{"agreement", "propose", "whereby", "--by", "example-health"}, 1, "already proposed"},
		{[]string{"agreement", "endorse", "example-borough", "zoom"}, 1, "no agreement for \"zoom\""},
		{[]string{"agreement", "endorse", "example-borough", "whereby"}, 0, "whitelist version"},
		{[]string{"agreement", "endorse", "example-health", "whereby"}, 0, "whitelist version"},
		{[]string{"agreement", "decline", "example-police", "whereby"}, 1, "--reason TEXT is required"},
		{[]string{"agreement", "decline", "example-police", "whereby", "--reason", "Not assessed by our security team yet"}, 0, "unchanged"},
	}
	for _, s := range steps {
		out, errs, code := adminRun(t, dir, s.args...)
		if code != s.code || !strings.Contains(out+errs, s.want) {
			t.Fatalf("%v: exit %d, want %d with %q:\n%s%s", s.args, code, s.code, s.want, out, errs)
		}
	}

	doc := signedWhitelist(t, dir)
	if len(doc.Agreements) != 1 {
		t.Fatalf("agreements %+v", doc.Agreements)
	}
	a := doc.Agreements[0]
	if a.Service != "whereby" || a.Category != "video" || !slices.Equal(a.EndorsedBy, []string{"example-borough", "example-health"}) || a.Since.IsZero() {
		t.Fatalf("agreement %+v", a)
	}
	for _, p := range doc.Policies {
		if p.Service == "whereby" && (p.Org == "example-borough" || p.Org == "example-health") && p.Status != whitelist.Approved {
			t.Errorf("%s's policy for whereby is %s after endorsing", p.Org, p.Status)
		}
	}

	out, _, code := adminRun(t, dir, "agreement", "list", "--json")
	var list []struct {
		Service    string   `json:"service"`
		ProposedBy string   `json:"proposed_by"`
		EndorsedBy []string `json:"endorsed_by"`
		Answers    []struct {
			Org, Decision, Reason string
		} `json:"answers"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || len(list[0].Answers) != 3 || list[0].ProposedBy != "example-borough" {
		t.Fatalf("agreement list --json: %s", out)
	}
	out, _, _ = adminRun(t, dir, "agreement", "list")
	if !strings.Contains(out, "whereby (video): proposed by example-borough") || !strings.Contains(out, "example-police declined") ||
		!strings.Contains(out, "Not assessed by our security team yet") {
		t.Errorf("agreement list:\n%s", out)
	}
}
