package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

var newTokenRE = regexp.MustCompile(`id="new-token">(dtr_[A-Za-z0-9_-]+)<`)

func bearer(t *testing.T, e *env, method, path, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	return r.StatusCode, r.Header.Get("Content-Type")
}

// TestScopedAPITokens: an admin makes a token for a role and an
// organisation (shown once, stored hashed); it reads the aggregates API and
// the exports of what that role may read, nothing else, and nothing once
// revoked.
func TestScopedAPITokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 12)
		admin := e.signIn("north-admin@example.org")
		r := admin.post("/tokens", url.Values{"label": {"monthly report"}, "role": {RoleViewer}, "org": {"south"}})
		m := newTokenRE.FindStringSubmatch(r.body)
		if r.code != 200 || m == nil {
			t.Fatalf("make token: %d", r.code)
		}
		tok := m[1]
		if again := admin.get("/tokens"); strings.Contains(again.body, tok) || !strings.Contains(again.body, "monthly report") {
			t.Fatal("the token is shown again, or not listed")
		}
		for _, c := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/api/v1/aggregates?org=north", 200},
			{"GET", "/api/v1/aggregates?org=south", 403}, // the form named south; an org admin's tokens are for its own org
			{"GET", "/orgs/north?export=blocked-services&format=csv", 200},
			{"GET", "/orgs/north?export=blocked-services&format=json", 200},
			{"GET", "/orgs/south?export=blocked-services&format=csv", 403},
			{"GET", "/orgs/north", 401}, // a page, not an export
			{"GET", "/contacts?export=contacts&format=csv", 403},
			{"POST", "/review/north/video-a", 401},
		} {
			if got, _ := bearer(t, e, c.method, c.path, tok); got != c.want {
				t.Errorf("%s %s with the token: %d, want %d", c.method, c.path, got, c.want)
			}
		}
		if _, ct := bearer(t, e, "GET", "/orgs/north?export=blocked-services&format=csv", tok); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("export content type %q", ct)
		}
		// Stored hashed: the token is nowhere in the table.
		rows, _ := db.QueryContext(context.Background(), `SELECT token_hash, email, label, created_at, id, role, org, created_by, revoked_at, last_used FROM dash_api_tokens`)
		for rows.Next() {
			var cols [10]string
			ptrs := make([]any, len(cols))
			for i := range cols {
				ptrs[i] = &cols[i]
			}
			rows.Scan(ptrs...)
			for _, c := range cols {
				if strings.Contains(c, tok) || strings.Contains(c, strings.TrimPrefix(tok, "dtr_")) {
					t.Fatal("the token is stored in clear")
				}
			}
			if cols[9] == "" {
				t.Error("last use not recorded")
			}
		}
		rows.Close()

		id := regexp.MustCompile(`action="/tokens/([^/]+)/revoke"`).FindStringSubmatch(admin.get("/tokens").body)[1]
		if r := admin.post("/tokens/"+id+"/revoke", nil); r.code != 200 {
			t.Fatalf("revoke: %d", r.code)
		}
		for _, p := range []string{"/api/v1/aggregates?org=north", "/orgs/north?export=blocked-services&format=csv"} {
			if got, _ := bearer(t, e, "GET", p, tok); got != 401 {
				t.Errorf("revoked token on %s: %d, want 401", p, got)
			}
		}
		if a := admin.get("/audit"); !strings.Contains(a.body, "API token made") || !strings.Contains(a.body, "API token revoked") {
			t.Error("token changes not audited")
		}
	})
}

func TestAPITokenRoleRules(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	sector, orgAdmin, viewer := e.signIn("sector@example.org"), e.signIn("north-admin@example.org"), e.signIn("viewer@example.org")
	_, southTok, err := CreateScopedToken(context.Background(), db, "sector@example.org", "south feed", RoleViewer, "south")
	if err != nil {
		t.Fatal(err)
	}
	var southID string
	db.QueryRowContext(context.Background(), `SELECT id FROM dash_api_tokens WHERE label = 'south feed'`).Scan(&southID)
	for _, c := range []struct {
		name         string
		b            *browser
		method, path string
		form         url.Values
		want         int
	}{
		{"viewer cannot see tokens", viewer, "GET", "/tokens", nil, 403},
		{"viewer cannot make tokens", viewer, "POST", "/tokens", url.Values{"label": {"x"}, "role": {RoleViewer}}, 403},
		{"org admin cannot make a sector-admin token", orgAdmin, "POST", "/tokens", url.Values{"label": {"x"}, "role": {RoleSectorAdmin}}, 403},
		{"org admin cannot revoke another org's token", orgAdmin, "POST", "/tokens/" + southID + "/revoke", nil, 404},
		{"no label", sector, "POST", "/tokens", url.Values{"label": {""}, "role": {RoleViewer}}, 400},
		{"org-admin token needs an org", sector, "POST", "/tokens", url.Values{"label": {"x"}, "role": {RoleOrgAdmin}}, 400},
	} {
		c.b.get("/")
		var r resp
		if c.method == "GET" {
			r = c.b.get(c.path)
		} else {
			r = c.b.post(c.path, c.form)
		}
		if r.code != c.want {
			t.Errorf("%s: %d, want %d", c.name, r.code, c.want)
		}
	}
	if got, _ := bearer(t, e, "GET", "/api/v1/aggregates?org=south", southTok); got != 200 {
		t.Fatalf("a refused revoke revoked: %d", got)
	}
	// Removing the person who made a token revokes it.
	if _, err := AddUser(context.Background(), db, "maker@example.org", RoleOrgAdmin, "north"); err != nil {
		t.Fatal(err)
	}
	_, tok, _ := CreateScopedToken(context.Background(), db, "maker@example.org", "feed", RoleViewer, "north")
	sector.get("/")
	if r := sector.post("/people/"+url.PathEscape("maker@example.org")+"/remove", nil); r.code != 200 {
		t.Fatalf("remove: %d", r.code)
	}
	if got, _ := bearer(t, e, "GET", "/api/v1/aggregates?org=north", tok); got != 401 {
		t.Fatalf("token of a removed person: %d", got)
	}
}
