package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

var inviteLinkRE = regexp.MustCompile(`id="invitation-link">https?://[^/]+(/invite/inv_[A-Za-z0-9_-]+)<`)

// acceptInvite opens an invitation link in a fresh browser and accepts it.
func (e *env) acceptInvite(path, pw string) (*browser, resp) {
	b := e.browser()
	if r := b.get(path); r.code != 200 {
		return b, r
	}
	return b, b.post(path, url.Values{"new": {pw}, "confirm": {pw}})
}

// TestInvitationsFromTheDashboard: a sector admin invites an organisation
// admin, who invites a viewer; each link is shown once, works once, sets a
// password and lands on the dashboard with the invited role; every step is
// audited and last sign-in is shown.
func TestInvitationsFromTheDashboard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		sector := e.signIn("sector@example.org")
		r := sector.post("/people", url.Values{"email": {"New.Admin@Example.org"}, "role": {RoleOrgAdmin}, "org": {"south"}})
		m := inviteLinkRE.FindStringSubmatch(r.body)
		if r.code != 200 || m == nil {
			t.Fatalf("invite: %d, no link shown", r.code)
		}
		link := m[1]
		if again := sector.get("/people"); strings.Contains(again.body, link) || !strings.Contains(again.body, "new.admin@example.org") {
			t.Fatal("the link is shown again, or the pending invitation is not listed")
		}
		pw := "a long enough passphrase for south"
		b, r := e.acceptInvite(link, pw)
		if r.code != http.StatusSeeOther || r.loc != "/" {
			t.Fatalf("accept: %d %s", r.code, r.loc)
		}
		home := b.get("/")
		if home.code != 200 || !strings.Contains(home.body, "new.admin@example.org (organisation administrator)") {
			t.Fatalf("after accepting: %d", home.code)
		}
		if _, r := e.acceptInvite(link, pw); r.code != http.StatusNotFound {
			t.Fatalf("second use of the link: %d, want 404", r.code)
		}
		// The password works for a later sign-in.
		e.pw["new.admin@example.org"] = pw
		orgAdmin := e.signIn("new.admin@example.org")

		// The new org admin invites a viewer of its own organisation, even
		// when the form is crafted to name another.
		r = orgAdmin.post("/people", url.Values{"email": {"viewer2@example.org"}, "role": {RoleViewer}, "org": {"north"}})
		m = inviteLinkRE.FindStringSubmatch(r.body)
		if r.code != 200 || m == nil {
			t.Fatalf("org admin invites: %d", r.code)
		}
		b2, r := e.acceptInvite(m[1], "another long passphrase here")
		if r.code != http.StatusSeeOther {
			t.Fatalf("viewer accepts: %d", r.code)
		}
		u, err := getUser(context.Background(), db, "viewer2@example.org")
		if err != nil || u.Role != RoleViewer || u.Org != "south" {
			t.Fatalf("invited viewer: %+v %v", u, err)
		}
		if r := b2.get("/orgs/north"); r.code != 403 {
			t.Fatalf("invited viewer reads another org: %d", r.code)
		}
		people := sector.get("/people")
		if strings.Count(people.body, "people.never") > 0 || !strings.Contains(people.body, "viewer2@example.org") {
			t.Fatal("people page: missing translation or person")
		}
		var last string
		db.QueryRowContext(context.Background(), `SELECT last_sign_in FROM dash_users WHERE email = 'viewer2@example.org'`).Scan(&last)
		if last == "" || !strings.Contains(people.body, last) {
			t.Fatalf("last sign-in %q not shown", last)
		}
		audit := sector.get("/audit")
		for _, want := range []string{"Person invited", "Invitation accepted"} {
			if !strings.Contains(audit.body, want) {
				t.Errorf("audit lacks %q", want)
			}
		}
	})
}

// TestPeopleRoleRules crafts requests the pages never make.
func TestPeopleRoleRules(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	if _, err := AddUser(context.Background(), db, "south-viewer@example.org", RoleViewer, "south"); err != nil {
		t.Fatal(err)
	}
	sector, orgAdmin := e.signIn("sector@example.org"), e.signIn("north-admin@example.org")
	northViewer, viewer := e.signIn("north-viewer@example.org"), e.signIn("viewer@example.org")
	inv := func(email, role, org string) url.Values {
		return url.Values{"email": {email}, "role": {role}, "org": {org}}
	}
	esc := url.PathEscape
	cases := []struct {
		name         string
		b            *browser
		method, path string
		form         url.Values
		want         int
	}{
		{"viewer cannot see people", northViewer, "GET", "/people", nil, 403},
		{"sector viewer cannot invite", viewer, "POST", "/people", inv("x@example.org", RoleViewer, ""), 403},
		{"org admin cannot invite an org admin", orgAdmin, "POST", "/people", inv("x@example.org", RoleOrgAdmin, "north"), 403},
		{"org admin cannot invite a sector admin", orgAdmin, "POST", "/people", inv("x@example.org", RoleSectorAdmin, ""), 403},
		{"sector admin cannot invite a sector admin", sector, "POST", "/people", inv("x@example.org", RoleSectorAdmin, ""), 403},
		{"org admin needs an org", sector, "POST", "/people", inv("x@example.org", RoleOrgAdmin, ""), 400},
		{"unknown org", sector, "POST", "/people", inv("x@example.org", RoleViewer, "nowhere"), 400},
		{"not an email", sector, "POST", "/people", inv("nobody", RoleViewer, ""), 400},
		{"existing account", sector, "POST", "/people", inv("viewer@example.org", RoleViewer, ""), 409},
		{"org admin cannot open another org's viewer", orgAdmin, "GET", "/people/" + esc("south-viewer@example.org"), nil, 404},
		{"org admin cannot remove another org's viewer", orgAdmin, "POST", "/people/" + esc("south-viewer@example.org") + "/remove", nil, 404},
		{"org admin cannot remove a sector admin", orgAdmin, "POST", "/people/" + esc("sector@example.org") + "/remove", nil, 404},
		{"org admin cannot remove itself", orgAdmin, "POST", "/people/" + esc("north-admin@example.org") + "/remove", nil, 404},
		{"org admin cannot change a role", orgAdmin, "POST", "/people/" + esc("north-viewer@example.org") + "/role", url.Values{"role": {RoleOrgAdmin}, "org": {"north"}}, 403},
		{"sector admin cannot change its own role", sector, "POST", "/people/" + esc("sector@example.org") + "/role", url.Values{"role": {RoleViewer}}, 404},
		{"bad role", sector, "POST", "/people/" + esc("viewer@example.org") + "/role", url.Values{"role": {"root"}}, 400},
		{"org admin opens its viewer", orgAdmin, "GET", "/people/" + esc("north-viewer@example.org"), nil, 200},
		{"no CSRF token", sector, "POST", "/people", url.Values{"csrf": {"nope"}, "email": {"y@example.org"}, "role": {RoleViewer}}, 403},
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
	var n int
	db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM dash_invitations`).Scan(&n)
	if n != 0 {
		t.Fatalf("refused requests made %d invitations", n)
	}
	if _, err := getUser(context.Background(), db, "south-viewer@example.org"); err != nil {
		t.Fatal("a refused request removed a person")
	}

	// A role change ends the person's sessions; a removal ends the account.
	sector.get("/")
	if r := sector.post("/people/"+esc("viewer@example.org")+"/role", url.Values{"role": {RoleOrgAdmin}, "org": {"south"}}); r.code != 200 {
		t.Fatalf("change role: %d", r.code)
	}
	if r := viewer.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("after a role change the old session still works: %d", r.code)
	}
	if u, _ := getUser(context.Background(), db, "viewer@example.org"); u.Role != RoleOrgAdmin || u.Org != "south" {
		t.Fatalf("role not changed: %+v", u)
	}
	orgAdmin.get("/")
	if r := orgAdmin.post("/people/"+esc("north-viewer@example.org")+"/remove", nil); r.code != 200 {
		t.Fatalf("org admin removes its viewer: %d", r.code)
	}
	if r := northViewer.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("a removed person's session still works: %d", r.code)
	}
	audit := sector.get("/audit")
	for _, want := range []string{"Role changed", "Person removed"} {
		if !strings.Contains(audit.body, want) {
			t.Errorf("audit lacks %q", want)
		}
	}
}

// TestInvitationExpiryWithdrawalAndHooks: an expired or withdrawn link is
// refused with its reason; a kind's hook runs in the accepting transaction,
// and its failure undoes the acceptance.
func TestInvitationExpiryWithdrawalAndHooks(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	mk := func(email, kind string) (Invitation, string) {
		inv, tok, err := CreateInvitation(ctx, db, Invitation{Email: email, Role: RoleViewer, Org: "north", Kind: kind, Data: `{"x":1}`, CreatedBy: "sector@example.org"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return inv, "/invite/" + tok
	}
	_, expired := mk("late@example.org", "")
	db.ExecContext(ctx, `UPDATE dash_invitations SET expires_at = '2000-01-01T00:00:00Z' WHERE email = 'late@example.org'`)
	if _, r := e.acceptInvite(expired, "a long enough passphrase"); r.code != http.StatusGone || !strings.Contains(r.body, "expired") {
		t.Fatalf("expired link: %d", r.code)
	}
	w, withdrawn := mk("gone@example.org", "")
	sector := e.signIn("sector@example.org")
	if r := sector.post("/invitations/"+w.ID+"/revoke", nil); r.code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", r.code)
	}
	if _, r := e.acceptInvite(withdrawn, "a long enough passphrase"); r.code != http.StatusNotFound {
		t.Fatalf("withdrawn link: %d", r.code)
	}
	// A crafted accept without the page's token is refused.
	_, fresh := mk("fresh@example.org", "")
	b := e.browser()
	if r := b.post(fresh, url.Values{"csrf": {"x"}, "new": {"a long enough passphrase"}, "confirm": {"a long enough passphrase"}}); r.code != 403 {
		t.Fatalf("accept without CSRF: %d", r.code)
	}
	// A weak password is refused and the link still works.
	if _, r := e.acceptInvite(fresh, "password"); r.code != 400 {
		t.Fatalf("weak password: %d", r.code)
	}
	if _, r := e.acceptInvite(fresh, "a long enough passphrase"); r.code != http.StatusSeeOther {
		t.Fatalf("accept after a weak password: %d", r.code)
	}

	var seen []Invitation
	fail := true
	e.d.OnInvitationAccepted("filtering-owner", func(ctx context.Context, tx *store.Tx, inv Invitation) error {
		if fail {
			return errors.New("directory full")
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dash_users WHERE email = ?`, inv.Email).Scan(&n); err != nil || n != 1 {
			t.Errorf("hook: account not visible in the transaction (%d, %v)", n, err)
		}
		seen = append(seen, inv)
		return nil
	})
	_, owner := mk("owner@example.org", "filtering-owner")
	if _, r := e.acceptInvite(owner, "a long enough passphrase"); r.code != 500 {
		t.Fatalf("failing hook: %d", r.code)
	}
	if _, err := getUser(ctx, db, "owner@example.org"); !errors.Is(err, errNoUser) {
		t.Fatal("a failing hook left an account behind")
	}
	fail = false
	if _, r := e.acceptInvite(owner, "a long enough passphrase"); r.code != http.StatusSeeOther {
		t.Fatalf("accept with the hook: %d", r.code)
	}
	if len(seen) != 1 || seen[0].Data != `{"x":1}` || seen[0].Kind != "filtering-owner" || seen[0].Org != "north" {
		t.Fatalf("hook saw %+v", seen)
	}
}
