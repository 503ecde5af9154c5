package dashboard

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/whitelist"
)

// hostile is put in every free-text field a test can reach.
const hostile = `<script>alert("x")</script>"'><img src=x onerror=alert(1)>&amp;=cmd|' /C calc'!A0`

var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func fixture() *catalog.Bundle {
	return &catalog.Bundle{
		Categories: whitelist.Categories,
		Services: []whitelist.Service{
			{ID: "video-a", Name: "Video A " + hostile, Vendor: "A " + hostile, Category: "video", Hosts: []string{"meet.a.example"}, URL: "https://meet.a.example/"},
			{ID: "video-c", Name: "Video C", Vendor: "C", Category: "video", Hosts: []string{"call.c.example"}, URL: "https://call.c.example/"},
			{ID: "docs-b", Name: "Docs B", Vendor: "B", Category: "documents", Hosts: []string{"docs.b.example"}, URL: "https://docs.b.example/"},
		},
	}
}

func examples() *catalog.Bundle {
	return &catalog.Bundle{
		Organisations: []whitelist.Organisation{
			{ID: "north", Name: "Northshire " + hostile, Sector: "local-government"},
			{ID: "south", Name: "South Vale", Sector: "health"},
		},
		Policies: []whitelist.Policy{
			{Org: "north", Service: "video-a", Status: "blocked", Alternatives: []string{"video-c"}, Note: hostile},
			{Org: "south", Service: "video-a", Status: "approved"},
		},
	}
}

type env struct {
	t   *testing.T
	db  *store.DB
	cat *catalog.Catalog
	d   *Dashboard
	srv *httptest.Server
	pw  map[string]string // email -> current password
}

// newEnv starts a dashboard on a real catalog and database, on 127.0.0.1.
func newEnv(t *testing.T, db *store.DB, opt func(*Options)) *env {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, db, catalog.Options{Seed: fixture(), Examples: examples()})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{DB: db, Catalog: func() catalog.Service { return cat }, Privacy: aggregates.Privacy{K: 5},
		Now: func() time.Time { return testNow }}
	if opt != nil {
		opt(&o)
	}
	d, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	d.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, cat: cat, d: d, srv: srv, pw: map[string]string{}}
	for _, u := range []struct{ email, role, org string }{
		{"sector@example.org", RoleSectorAdmin, ""},
		{"north-admin@example.org", RoleOrgAdmin, "north"},
		{"north-viewer@example.org", RoleViewer, "north"},
		{"viewer@example.org", RoleViewer, ""},
	} {
		pw, err := AddUser(ctx, db, u.email, u.role, u.org)
		if err != nil {
			t.Fatal(err)
		}
		e.pw[u.email] = pw
	}
	return e
}

func (e *env) count(day, org, svc, m, need string, n int64) {
	e.t.Helper()
	k := aggregates.Key{Day: day, Org: org, Service: svc, Method: m, Need: need}
	if err := aggregates.Increment(context.Background(), e.db, k, n); err != nil {
		e.t.Fatal(err)
	}
}

// browser is a cookie-keeping client that remembers the last CSRF token
// it saw on a page.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
	last *url.URL // the last URL asked for (to resolve a relative redirect)
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

type resp struct {
	code int
	body string
	h    http.Header
	loc  string
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	r, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	if m := csrfRE.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp{code: r.StatusCode, body: string(body), h: r.Header, loc: r.Header.Get("Location")}
}

func (b *browser) get(path string) resp {
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	b.last = req.URL
	return b.do(req)
}

// post sends a form with the current CSRF token unless the form has one.
func (b *browser) post(path string, form url.Values) resp {
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// signIn signs in (changing a one-time password on the way) and returns
// the browser.
func (e *env) signIn(email string) *browser {
	e.t.Helper()
	b := e.browser()
	b.get("/sign-in")
	r := b.post("/sign-in", url.Values{"email": {email}, "password": {e.pw[email]}})
	if r.code != http.StatusSeeOther {
		e.t.Fatalf("sign in %s: %d %s", email, r.code, r.body)
	}
	if r = b.get("/"); r.code == http.StatusSeeOther && r.loc == "/account/password" {
		b.get("/account/password")
		nw := "correct horse battery staple " + email
		r = b.post("/account/password", url.Values{"current": {e.pw[email]}, "new": {nw}, "confirm": {nw}})
		if r.code != http.StatusSeeOther {
			e.t.Fatalf("change password %s: %d %s", email, r.code, r.body)
		}
		e.pw[email] = nw
	}
	if r = b.get("/"); r.code != http.StatusOK {
		e.t.Fatalf("overview after sign in: %d", r.code)
	}
	return b
}
