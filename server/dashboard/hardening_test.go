package dashboard

import (
	"regexp"

	"github.com/detour-project/detour/shared/whitelist"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// The audit log shows each entry under the role rule of the thing it
// records: a contact's name and email are as private in /audit and its
// exports as they are on /contacts (sector admins only).
func TestAuditFollowsTheRuleOfWhatItRecords(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		sector := e.signIn("sector@example.org")
		sector.get("/contacts")
		const email = "filter.owner@north.example"
		if r := sector.post("/contacts", url.Values{"org": {"north"}, "name": {"Fiona Filter"}, "role": {"Head of IT"}, "email": {email}}); r.code != 303 {
			t.Fatalf("add contact: %d %s", r.code, r.body)
		}
		orgAdmin := e.signIn("north-admin@example.org")
		orgAdmin.get("/review/north/video-a")
		if r := orgAdmin.post("/review/north/video-a/comments", url.Values{"comment": {"discussed with the DPO"}}); r.code != 303 {
			t.Fatalf("comment: %d", r.code)
		}
		for _, who := range []string{"north-admin@example.org", "north-viewer@example.org", "viewer@example.org"} {
			b := e.signIn(who)
			for _, path := range []string{"/audit", "/audit?export=audit&format=csv", "/audit?export=audit&format=json", "/audit?lang=cy"} {
				r := b.get(path)
				if r.code != 200 {
					t.Fatalf("%s %s: %d", who, path, r.code)
				}
				if strings.Contains(r.body, email) || strings.Contains(r.body, "Fiona Filter") {
					t.Errorf("%s sees a contact in %s", who, path)
				}
			}
		}
		// What org readers may see is still there: north's own discussion.
		if r := e.signIn("north-viewer@example.org").get("/audit?export=audit&format=csv"); !strings.Contains(r.body, "north-admin@example.org") {
			t.Errorf("north's viewer does not see the comment on north's review item:\n%s", r.body)
		}
		if r := sector.get("/audit?export=audit&format=csv"); !strings.Contains(r.body, email) {
			t.Errorf("the sector admin does not see the contact change:\n%s", r.body)
		}
	})
}

// No cell of any export starts a formula, the header row included (the
// matrix's headers are organisation names, which come from outside).
func TestNoExportCellStartsAFormula(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	if _, err := e.cat.AddOrganisation(t.Context(), orgNamed("formula", `=HYPERLINK("http://evil","x")`), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.AddOrganisation(t.Context(), orgNamed("formula2", ` +cmd|' /C calc'!A0`), "test"); err != nil {
		t.Fatal(err)
	}
	e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 7)
	a := e.signIn("sector@example.org")
	checked, headerDefused := 0, false
	for _, path := range []string{"/matrix", "/orgs", "/", "/services/video-a", "/review", "/audit"} {
		p := a.get(path)
		for _, m := range exportLinkRE.FindAllStringSubmatch(p.body, -1) {
			href := strings.ReplaceAll(m[1], "&amp;", "&")
			if !strings.Contains(href, "format=csv") {
				continue
			}
			r := a.get(href)
			if r.code != 200 {
				t.Fatalf("%s: %d", href, r.code)
			}
			checked++
			head, _, _ := strings.Cut(r.body, "\n")
			headerDefused = headerDefused || strings.Contains(head, `'=HYPERLINK`)
			for i, line := range strings.Split(strings.TrimSpace(r.body), "\n") {
				for _, cell := range splitCSV(line) {
					c := strings.TrimLeft(cell, " ")
					if c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
						t.Errorf("%s line %d: cell %q starts a formula", href, i+1, cell)
					}
				}
			}
		}
	}
	if checked < 6 || !headerDefused {
		t.Errorf("checked %d CSV exports; the matrix header with a formula name defused: %v", checked, headerDefused)
	}
}

var exportLinkRE = regexpMust(`href="([^"]*export=[^"]*)"`)

// splitCSV splits one CSV record (no embedded newlines in these tables).
func splitCSV(line string) []string {
	var out []string
	var cur strings.Builder
	q := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"' && q && i+1 < len(line) && line[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			q = !q
		case c == ',' && !q:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// New passwords follow NIST SP 800-63B: length, not composition; spaces
// allowed but not alone; common, repetitive, sequential and context passwords
// refused — each with its own reason.
func TestNewPasswordRules(t *testing.T) {
	cases := []struct {
		pw, want string
	}{
		{"aaaaaaaaaaaa", "password.repetitive"},
		{"            ", "password.only_spaces"},
		{"\t\t\t\t\t\t\t\t\t\t\t\t", "password.invalid"},
		{"abcdefghijklmn", "password.repetitive"},
		{"123456789012", "password.repetitive"},
		{"qwertyuiop[]", "password.repetitive"},
		{"abababababab", "password.repetitive"},
		{"Password1234!", "password.common"},
		{"P@ssw0rd2024!!", "password.common"},
		{"passwordpassword", "password.common"},
		{"Welcome2Cardiff", "password.common"},
		{"Summer2026!!!", "password.common"},
		{"jo.bloggs2026!", "password.context"},
		{"short pw", "password.too_short"},
		{strings.Repeat("long words ", 30), "password.too_long"},
		{"nul\x00inside password", "password.invalid"},
		{"correct horse battery staple", ""},
		{"a long enough password", ""},
		{"tri gair Cymraeg hir", ""},
		{"Tr0ub4dor&3-plus-more", ""},
	}
	for _, c := range cases {
		if got := passwordProblem(c.pw, "jo.bloggs@north.example", "north"); got != c.want {
			t.Errorf("passwordProblem(%q) = %q, want %q", c.pw, got, c.want)
		}
	}
}

func TestWeakPasswordRefusedByTheForm(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	b := e.signIn("north-viewer@example.org")
	b.get("/account/password")
	for _, pw := range []string{"zzzzzzzzzzzz", "            "} {
		r := b.post("/account/password", url.Values{"current": {e.pw["north-viewer@example.org"]}, "new": {pw}, "confirm": {pw}})
		if r.code != http.StatusBadRequest {
			t.Errorf("%q accepted: %d", pw, r.code)
		}
		if !strings.Contains(r.body, "too easy to guess") && !strings.Contains(r.body, "only spaces") {
			t.Errorf("%q: the page does not say why", pw)
		}
	}
}

// Control characters are refused with 400 and a message wherever a person
// types text, identically on SQLite and PostgreSQL, and nothing is stored.
func TestControlCharactersRefusedEverywhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		a := e.signIn("sector@example.org")
		for _, bad := range []string{"before\x00after", "red\x1b[31m", "csi\u009b1m"} {
			forms := []struct {
				page, path string
				form       url.Values
			}{
				{"/review/north/video-a", "/review/north/video-a", url.Values{"status": {"approved"}, "note": {bad}}},
				{"/review/north/video-a", "/review/north/video-a/comments", url.Values{"comment": {bad}}},
				{"/contacts", "/contacts", url.Values{"org": {"north"}, "name": {bad}, "email": {"x@y.example"}}},
				{"/contacts", "/contacts", url.Values{"org": {"north"}, "name": {"Line\nbreak"}, "email": {"x@y.example"}}},
			}
			for _, f := range forms {
				a.get(f.page)
				r := a.post(f.path, f.form)
				if r.code != http.StatusBadRequest {
					t.Errorf("POST %s with %q: %d, want 400", f.path, bad, r.code)
				}
				if !strings.Contains(r.body, "control characters") {
					t.Errorf("POST %s: the page does not say why", f.path)
				}
			}
		}
		var n int
		db.QueryRowContext(t.Context(), `SELECT (SELECT COUNT(*) FROM dash_contacts) + (SELECT COUNT(*) FROM dash_review_comments)`).Scan(&n)
		if n != 0 {
			t.Errorf("%d rows stored from refused forms", n)
		}
		// A textarea's CRLF line breaks are text, not control characters.
		a.get("/review/north/video-a")
		if r := a.post("/review/north/video-a/comments", url.Values{"comment": {"first line\r\nsecond line"}}); r.code != 303 {
			t.Errorf("a two-line comment: %d %s", r.code, r.body)
		}
		// The sign-in form too.
		anon := e.browser()
		anon.get("/sign-in")
		if r := anon.post("/sign-in", url.Values{"email": {"sector@example.org\x00"}, "password": {"x"}}); r.code != http.StatusBadRequest {
			t.Errorf("sign-in with NUL: %d", r.code)
		}
	})
}

// Signing out tells the browser to drop the session cookie now.
func TestSignOutClearsTheCookie(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	b := e.signIn("viewer@example.org")
	b.get("/")
	r := b.post("/sign-out", nil)
	if r.code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", r.code)
	}
	found := false
	for _, c := range r.h.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=;") {
			found = true
			if !strings.Contains(c, "Max-Age=0") {
				t.Errorf("sign-out cookie does not expire: %s", c)
			}
		}
	}
	if !found {
		t.Error("sign-out sets no session cookie")
	}
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

func orgNamed(id, name string) whitelist.Organisation {
	return whitelist.Organisation{ID: id, Name: name, Sector: "health"}
}
