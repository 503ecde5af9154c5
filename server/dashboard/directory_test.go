package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestDirectoryKeptByItsOwners: a sector admin invites a filtering owner
// (link shown once, works once); accepting makes them that organisation's
// admin with a directory entry; they keep and confirm their own entry; an
// old confirmation is flagged; viewers read nothing; only sector admins
// invite; nobody edits another's entry; hostile text is escaped.
func TestDirectoryKeptByItsOwners(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		sector := e.signIn("sector@example.org")
		orgAdmin := e.signIn("north-admin@example.org")
		viewer := e.signIn("north-viewer@example.org")

		sector.get("/directory")
		r := sector.post("/directory/invite", url.Values{"email": {"Owner@South.example"}, "org": {"south"}, "name": {"Sam " + hostile}})
		m := inviteLinkRE.FindStringSubmatch(r.body)
		if r.code != 200 || m == nil {
			t.Fatalf("invite owner: %d, no link", r.code)
		}
		if again := sector.get("/directory"); strings.Contains(again.body, m[1]) {
			t.Fatal("the link is shown again")
		}
		pw := "a long passphrase for the south owner"
		b, r := e.acceptInvite(m[1], pw)
		if r.code != http.StatusSeeOther {
			t.Fatalf("accept: %d", r.code)
		}
		if _, r := e.acceptInvite(m[1], pw); r.code != http.StatusNotFound {
			t.Fatalf("second use: %d", r.code)
		}
		u, err := getUser(t.Context(), db, "owner@south.example")
		if err != nil || u.Role != RoleOrgAdmin || u.Org != "south" {
			t.Fatalf("the invited owner: %+v %v", u, err)
		}
		page := b.get("/directory")
		if page.code != 200 || !strings.Contains(page.body, "Sam &lt;script&gt;") || strings.Contains(page.body, hostile) {
			t.Fatalf("directory after accepting: %d, entry missing or not escaped", page.code)
		}

		// The owner keeps their entry: name and contact required.
		if r := b.post("/directory/me", url.Values{"name": {"Sam Jones"}}); r.code != http.StatusBadRequest {
			t.Errorf("entry without contact: %d", r.code)
		}
		b.get("/directory")
		if r := b.post("/directory/me", url.Values{"name": {"Sam Jones"}, "role": {"Network lead"}, "team": {"Digital"}, "contact": {"filtering@south.example"}, "email": {"north-admin@example.org"}}); r.code != http.StatusSeeOther {
			t.Fatalf("save entry: %d %s", r.code, r.body)
		}
		var name, contact, org string
		db.QueryRowContext(t.Context(), `SELECT name, contact, org FROM directory_entries WHERE email = 'owner@south.example'`).Scan(&name, &contact, &org)
		if name != "Sam Jones" || contact != "filtering@south.example" || org != "south" {
			t.Fatalf("entry: %q %q %q", name, contact, org)
		}
		var n int
		db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM directory_entries WHERE email = 'north-admin@example.org'`).Scan(&n)
		if n != 0 {
			t.Fatal("a crafted form edited another person's entry")
		}
		// An existing org admin adds their own entry; an old one is flagged.
		orgAdmin.get("/directory")
		if r := orgAdmin.post("/directory/me", url.Values{"name": {"Nia"}, "contact": {"0123 456789"}}); r.code != http.StatusSeeOther {
			t.Fatalf("org admin adds an entry: %d", r.code)
		}
		db.ExecContext(t.Context(), `UPDATE directory_entries SET confirmed_at = '2025-01-01T00:00:00Z' WHERE email = 'north-admin@example.org'`)
		page = sector.get("/directory")
		if !strings.Contains(page.body, "2025-01-01 (not confirmed for over six months)") || !strings.Contains(page.body, "Network lead") {
			t.Error("the directory does not flag the stale entry or lacks the updated one")
		}

		// Role rules, by crafted requests.
		for _, path := range []string{"/directory"} {
			if r := viewer.get(path); r.code != http.StatusForbidden {
				t.Errorf("viewer GET %s: %d", path, r.code)
			}
		}
		viewer.get("/")
		if r := viewer.post("/directory/me", url.Values{"name": {"x"}, "contact": {"y"}}); r.code != http.StatusForbidden {
			t.Errorf("viewer saves an entry: %d", r.code)
		}
		orgAdmin.get("/directory")
		if r := orgAdmin.post("/directory/invite", url.Values{"email": {"x@example.org"}, "org": {"north"}}); r.code != http.StatusForbidden {
			t.Errorf("org admin invites an owner: %d", r.code)
		}
		if r := sector.post("/directory/invite", url.Values{"email": {"y@example.org"}, "org": {"nowhere"}}); r.code != http.StatusBadRequest {
			t.Errorf("invite for an unknown organisation: %d", r.code)
		}
		if r := sector.post("/directory/invite", url.Values{"email": {"north-admin@example.org"}, "org": {"north"}}); r.code != http.StatusConflict {
			t.Errorf("invite an existing account: %d", r.code)
		}
	})
}
