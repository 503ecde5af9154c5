package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/detour-project/detour/server/aggregates"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
)

func TestRoleBoundaries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 12)
		e.count("2026-11-22", "south", "docs-b", "tls-reset", "shared-document", 9)
		sector, orgAdmin := e.signIn("sector@example.org"), e.signIn("north-admin@example.org")
		northViewer, viewer := e.signIn("north-viewer@example.org"), e.signIn("viewer@example.org")
		decide := url.Values{"status": {"approved"}, "note": {"ok"}}
		cases := []struct {
			name   string
			b      *browser
			method string
			path   string
			form   url.Values
			want   int
		}{
			{"org admin reads own org", orgAdmin, "GET", "/orgs/north", nil, 200},
			{"org admin cannot read another org", orgAdmin, "GET", "/orgs/south", nil, 403},
			{"org admin cannot export another org", orgAdmin, "GET", "/orgs/south?export=blocked-services&format=json", nil, 403},
			{"org admin cannot open another org's review item", orgAdmin, "GET", "/review/south/docs-b", nil, 403},
			{"org admin cannot decide for another org", orgAdmin, "POST", "/review/south/docs-b", decide, 403},
			{"org admin cannot comment for another org", orgAdmin, "POST", "/review/south/docs-b/comments", url.Values{"comment": {"hi"}}, 403},
			{"org admin cannot see contacts", orgAdmin, "GET", "/contacts", nil, 403},
			{"org admin cannot add a contact", orgAdmin, "POST", "/contacts", url.Values{"org": {"north"}, "name": {"x"}, "email": {"x@y"}}, 403},
			{"org admin cannot read another org's figures by API", orgAdmin, "GET", "/api/v1/aggregates?org=south", nil, 403},
			{"org admin reads own figures by API", orgAdmin, "GET", "/api/v1/aggregates?org=north", nil, 200},
			{"org viewer reads own org", northViewer, "GET", "/orgs/north", nil, 200},
			{"org viewer cannot read another org", northViewer, "GET", "/orgs/south", nil, 403},
			{"viewer cannot decide", northViewer, "POST", "/review/north/video-a", decide, 403},
			{"sector viewer reads any org", viewer, "GET", "/orgs/south", nil, 200},
			{"sector viewer cannot decide", viewer, "POST", "/review/south/docs-b", decide, 403},
			{"sector viewer cannot see contacts", viewer, "GET", "/contacts", nil, 403},
			{"sector admin sees contacts", sector, "GET", "/contacts", nil, 200},
			{"sector admin reads any org", sector, "GET", "/orgs/south", nil, 200},
			{"unknown org", sector, "GET", "/orgs/nowhere", nil, 404},
			{"signed out is sent to sign in", e.browser(), "GET", "/orgs/north", nil, 303},
			{"signed out POST is refused", e.browser(), "POST", "/review/north/video-a", decide, 403},
			{"signed out API is refused", e.browser(), "GET", "/api/v1/aggregates", nil, 401},
		}
		for _, c := range cases {
			var r resp
			if c.method == "GET" {
				r = c.b.get(c.path)
			} else {
				c.b.get("/") // a fresh CSRF token of its own session
				r = c.b.post(c.path, c.form)
			}
			if r.code != c.want {
				t.Errorf("%s: %s %s = %d, want %d", c.name, c.method, c.path, r.code, c.want)
			}
		}
		// The crafted decisions changed nothing.
		for _, p := range e.cat.Document().Policies {
			if p.Org == "south" && p.Service == "docs-b" {
				t.Fatalf("a refused decision changed a policy: %+v", p)
			}
		}
		// Another org's detail is not even linked from the org admin's pages.
		if r := orgAdmin.get("/review"); strings.Contains(r.body, "/review/south/") {
			t.Fatal("org admin's review queue lists another organisation's items")
		}
		if r := orgAdmin.get("/audit"); r.code != 200 {
			t.Fatalf("audit: %d", r.code)
		}
	})
}

func TestCSRFRefusals(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	a, other := e.signIn("sector@example.org"), e.signIn("north-admin@example.org")
	a.get("/contacts")
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "org": {"north"}, "name": {"N"}, "email": {"n@example.org"}}
	}
	cases := []struct {
		name string
		tok  string
		want int
	}{
		{"missing", "", 403},
		{"wrong", "AAAA", 403},
		{"another session's", other.csrf, 403},
		{"right", a.csrf, 303},
	}
	for _, c := range cases {
		if r := a.post("/contacts", form(c.tok)); r.code != c.want {
			t.Errorf("%s token: %d, want %d", c.name, r.code, c.want)
		}
	}
	// Sign-in needs its double-submit token: a form posted from elsewhere
	// without the cookie is refused even with the right password.
	b := e.browser()
	r := b.post("/sign-in", url.Values{"csrf": {"forged"}, "email": {"sector@example.org"}, "password": {e.pw["sector@example.org"]}})
	if r.code != 403 {
		t.Fatalf("sign-in without its token: %d", r.code)
	}
	// Sign-out is a POST and needs the token too.
	if r := a.post("/sign-out", url.Values{"csrf": {"nope"}}); r.code != 403 {
		t.Fatalf("sign-out with a wrong token: %d", r.code)
	}
}

func TestHostileStringsAreEscaped(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 7)
	a := e.signIn("sector@example.org")
	a.get("/contacts")
	if r := a.post("/contacts", url.Values{"org": {"north"}, "name": {hostile}, "role": {hostile}, "email": {hostile + "@x"}, "phone": {"=HYPERLINK(\"http://evil\")"}}); r.code != 303 {
		t.Fatalf("add contact: %d %s", r.code, r.body)
	}
	a.get("/review/north/video-a")
	if r := a.post("/review/north/video-a/comments", url.Values{"comment": {hostile}}); r.code != 303 {
		t.Fatalf("comment: %d", r.code)
	}
	a.get("/review/north/video-a")
	if r := a.post("/review/north/video-a", url.Values{"status": {"kept-blocked"}, "alternative": {"video-c"}, "note": {hostile}}); r.code != 303 {
		t.Fatalf("decide: %d %s", r.code, r.body)
	}
	for _, path := range []string{"/", "/services/video-a", "/orgs/north", "/orgs", "/matrix", "/review", "/review/north/video-a", "/contacts", "/audit",
		"/?lang=cy", "/sign-in?email=" + url.QueryEscape(hostile), "/review?status=" + url.QueryEscape(hostile),
		"/matrix?x=" + url.QueryEscape(hostile)} {
		r := a.get(path)
		if r.code != 200 {
			t.Errorf("%s: %d", path, r.code)
			continue
		}
		if strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") {
			t.Errorf("%s: a hostile string came back unescaped", path)
		}
	}
	// A failed sign-in echoes the email it was given.
	anon := e.browser()
	anon.get("/sign-in")
	if r := anon.post("/sign-in", url.Values{"email": {hostile}, "password": {"x"}}); r.code != 401 ||
		strings.Contains(r.body, "<script>alert") || !strings.Contains(r.body, "&lt;script&gt;") {
		t.Errorf("sign-in echo: %d", r.code)
	}
	if r := a.get("/contacts"); !strings.Contains(r.body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Error("contacts: the hostile name is not shown escaped")
	}
	// CSV: a cell that a spreadsheet would run as a formula is defused.
	r := a.get("/contacts?export=contacts&format=csv")
	if !strings.Contains(r.body, "'=HYPERLINK") || strings.Contains(r.body, ",=HYPERLINK") {
		t.Errorf("csv: formula not defused:\n%s", r.body)
	}
	if got := csvSafe("=1+1"); got != "'=1+1" {
		t.Errorf("csvSafe: %q", got)
	}
}

func TestSmallCountsSuppressedEverywhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 40)
		e.count("2026-11-21", "north", "docs-b", "tls-reset", "guidance", 3) // small: shown as fewer than 5
		e.count("2026-11-20", "south", "video-c", "tcp-reset", "meeting", 6)
		a := e.signIn("sector@example.org")
		r := a.get("/")
		if !strings.Contains(r.body, "fewer than 5") {
			t.Fatal("overview: no suppressed count")
		}
		// docs-b's 3 is hidden, and with it video-c's 6 (49 - 40 - 6 would give 3).
		var top struct {
			Rows []map[string]json.RawMessage `json:"rows"`
		}
		r = a.get("/?export=top-services&format=json")
		if err := json.Unmarshal([]byte(r.body), &top); err != nil {
			t.Fatalf("json export: %v %s", err, r.body)
		}
		if len(top.Rows) != 3 {
			t.Fatalf("json export rows: %s", r.body)
		}
		for _, row := range top.Rows {
			rep := string(row["reports"])
			if !strings.Contains(rep, `"suppressed": true`) && !strings.Contains(rep, `"value": 40`) {
				t.Errorf("json export shows a small or subtractable count: %s", rep)
			}
		}
		r = a.get("/?export=top-services&format=csv")
		if !strings.Contains(r.body, "fewer than 5") || strings.Contains(r.body, ",3\n") || strings.Contains(r.body, ",6\n") {
			t.Errorf("csv export:\n%s", r.body)
		}
		r = a.get("/?export=top-services&format=csv&lang=cy")
		if !strings.Contains(r.body, "llai na 5") {
			t.Errorf("welsh csv export:\n%s", r.body)
		}
		r = a.get("/api/v1/aggregates")
		if r.code != 200 || strings.Contains(r.body, `"value": 3`) || !strings.Contains(r.body, `"suppressed": true`) {
			t.Errorf("api: %d %s", r.code, r.body)
		}
		// A service page and the review item show it suppressed too.
		for _, p := range []string{"/services/docs-b", "/review/north/docs-b", "/orgs/north"} {
			if r := a.get(p + "?lang=en"); !strings.Contains(r.body, "fewer than 5") {
				t.Errorf("%s: no suppressed count", p)
			}
		}
	})
}

func TestReviewDecisionPublishesNewVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 12)
		published := make(chan int64, 4)
		e.cat.OnPublish(func(d *whitelist.Document) { published <- d.Version })
		before := e.cat.Document().Version
		a := e.signIn("north-admin@example.org")
		if r := a.get("/review"); !strings.Contains(r.body, "/review/north/video-a") {
			t.Fatal("the reported service is not in the queue")
		}
		a.get("/review/north/video-a")
		// Keeping it blocked needs an alternative.
		if r := a.post("/review/north/video-a", url.Values{"status": {"kept-blocked"}}); r.code != 400 {
			t.Fatalf("kept-blocked without alternative: %d", r.code)
		}
		r := a.post("/review/north/video-a", url.Values{"status": {"approved"}, "note": {"fine now"}})
		if r.code != 303 || !strings.Contains(r.loc, "version=") {
			t.Fatalf("approve: %d %q", r.code, r.loc)
		}
		after := e.cat.Document()
		if after.Version <= before {
			t.Fatalf("version %d after %d", after.Version, before)
		}
		select {
		case v := <-published:
			if v != after.Version {
				t.Fatalf("published %d, document %d", v, after.Version)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no new version was published")
		}
		found := false
		for _, p := range after.Policies {
			if p.Org == "north" && p.Service == "video-a" {
				found = p.Status == whitelist.Approved && p.Note == "fine now"
			}
		}
		if !found {
			t.Fatalf("policy not approved: %+v", after.Policies)
		}
		r = a.get(r.loc)
		if !strings.Contains(r.body, "Whitelist version") || !strings.Contains(r.body, "govuk-tag--green") {
			t.Fatal("the item page does not show the decision")
		}
		if r := a.get("/review?status=approved"); !strings.Contains(r.body, "/review/north/video-a") {
			t.Fatal("approved filter does not list the item")
		}
		if r := a.get("/audit"); !strings.Contains(r.body, "Policy changed") || !strings.Contains(r.body, "north-admin@example.org") {
			t.Fatal("the decision is not in the audit log")
		}
	})
}

func TestSignInThrottling(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	b := e.browser()
	b.get("/sign-in")
	for i := 0; i < 5; i++ {
		if r := b.post("/sign-in", url.Values{"email": {"sector@example.org"}, "password": {"wrong"}}); r.code != 401 {
			t.Fatalf("attempt %d: %d", i, r.code)
		}
	}
	// The right password is refused while the account is throttled...
	if r := b.post("/sign-in", url.Values{"email": {"sector@example.org"}, "password": {e.pw["sector@example.org"]}}); r.code != 429 {
		t.Fatalf("throttled attempt: %d", r.code)
	}
	// ...while another account still signs in.
	e.signIn("viewer@example.org")

	// The buckets, on a clock the test moves.
	clock := time.Unix(0, 0)
	th := newThrottle()
	th.now = func() time.Time { return clock }
	for i := 0; i < 5; i++ {
		if !th.allow("a") {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if th.allow("a") {
		t.Fatal("sixth attempt allowed")
	}
	clock = clock.Add(th.accEvery)
	if !th.allow("a") || th.allow("a") {
		t.Fatal("one attempt per refill interval")
	}
	// The global bucket limits guessing spread over many account names.
	refused := 0
	for i := 0; i < 200; i++ {
		if !th.allow("user" + string(rune('a'+i%26)) + time.Duration(i).String()) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no global limit")
	}
}

func TestSessionCookieFlags(t *testing.T) {
	cases := []struct {
		name       string
		secure     bool
		tls        bool
		proto      string
		wantSecure bool
	}{
		{"plain http", false, false, "", false},
		{"behind a TLS proxy", true, false, "", true},
		{"behind a proxy that says https", false, false, "https", true},
		{"served over TLS", false, true, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := storetest.SQLite(t)
			e := newEnv(t, db, func(o *Options) { o.Secure = c.secure })
			client := e.srv.Client()
			base := e.srv.URL
			if c.tls {
				srv := httptest.NewTLSServer(e.srv.Config.Handler)
				t.Cleanup(srv.Close)
				client, base = srv.Client(), srv.URL
			}
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			res, err := client.Get(base + "/sign-in")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var pre *http.Cookie
			for _, ck := range res.Cookies() {
				if ck.Name == preCSRFCookie {
					pre = ck
				}
			}
			for k, want := range map[string]string{
				"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
			} {
				if !strings.Contains(res.Header.Get(k), want) {
					t.Errorf("%s: %q", k, res.Header.Get(k))
				}
			}
			if !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Error("CSP lacks frame-ancestors 'none'")
			}
			form := url.Values{"csrf": {pre.Value}, "email": {"sector@example.org"}, "password": {e.pw["sector@example.org"]}}
			req, _ := http.NewRequest("POST", base+"/sign-in", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if c.proto != "" {
				req.Header.Set("X-Forwarded-Proto", c.proto)
			}
			req.AddCookie(pre)
			res, err = client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			var sess *http.Cookie
			for _, ck := range res.Cookies() {
				if ck.Name == sessionCookie {
					sess = ck
				}
			}
			if sess == nil {
				t.Fatalf("no session cookie (%d)", res.StatusCode)
			}
			if !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure != c.wantSecure || sess.Path != "/" {
				t.Fatalf("cookie flags: %+v", sess)
			}
			if len(sess.Value) < 43 {
				t.Fatalf("session id too short: %d", len(sess.Value))
			}
			// Only a hash of the id is stored.
			var n int
			db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM dash_sessions WHERE id_hash = ?`, sess.Value).Scan(&n)
			if n != 0 {
				t.Fatal("the session id is stored as is")
			}
			if _, err := loadSession(context.Background(), db, sess.Value); err != nil {
				t.Fatalf("session does not load: %v", err)
			}
		})
	}
}

func TestOneTimePasswordMustBeChanged(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	b := e.browser()
	b.get("/sign-in")
	b.post("/sign-in", url.Values{"email": {"viewer@example.org"}, "password": {e.pw["viewer@example.org"]}})
	for _, p := range []string{"/", "/matrix", "/review"} {
		if r := b.get(p); r.code != 303 || r.loc != "/account/password" {
			t.Fatalf("%s before changing the password: %d %s", p, r.code, r.loc)
		}
	}
	if r := b.get("/api/v1/aggregates"); r.code != 401 {
		t.Fatalf("api before changing the password: %d", r.code)
	}
	b.get("/account/password")
	old := e.pw["viewer@example.org"]
	for _, c := range []struct{ cur, nw, again string }{
		{"wrong", "a long enough password", "a long enough password"},
		{old, "short", "short"},
		{old, "a long enough password", "another long password"},
	} {
		if r := b.post("/account/password", url.Values{"current": {c.cur}, "new": {c.nw}, "confirm": {c.again}}); r.code != 400 {
			t.Fatalf("bad change %+v: %d", c, r.code)
		}
	}
	if r := b.post("/account/password", url.Values{"current": {old}, "new": {"a long enough password"}, "confirm": {"a long enough password"}}); r.code != 303 {
		t.Fatalf("change: %d", r.code)
	}
	if r := b.get("/matrix"); r.code != 200 {
		t.Fatalf("after change: %d", r.code)
	}
	// The one-time password no longer works.
	if _, err := authenticate(context.Background(), db, "viewer@example.org", old); err == nil {
		t.Fatal("old password still accepted")
	}
}

func TestAPITokenAndWelsh(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	e.count("2026-11-22", "north", "video-a", "dns-nxdomain", "meeting", 12)
	tok, err := CreateAPIToken(context.Background(), db, "north-admin@example.org", "test")
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth, q string) (int, string) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/aggregates"+q, nil)
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		b, _ := json.Marshal(m)
		return res.StatusCode, string(b)
	}
	if code, body := get("Bearer "+tok, "?org=north"); code != 200 || !strings.Contains(body, `"blocks_this_week":{"display":"12"`) {
		t.Fatalf("token: %d %s", code, body)
	}
	if code, _ := get("Bearer "+tok, "?org=south"); code != 403 {
		t.Fatalf("token for another org: %d", code)
	}
	if code, _ := get("Bearer dtr_nope", ""); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	// Welsh: <html lang="cy">, Welsh strings, and the choice is remembered.
	b := e.signIn("sector@example.org")
	r := b.get("/?lang=cy")
	if !strings.Contains(r.body, `<html lang="cy"`) || !strings.Contains(r.body, "Trosolwg") {
		t.Fatal("welsh page")
	}
	if r = b.get("/matrix"); !strings.Contains(r.body, `<html lang="cy"`) {
		t.Fatal("language not remembered")
	}
}

func TestMessageCatalogsMatch(t *testing.T) {
	for key := range messages["en"] {
		if _, ok := messages["cy"][key]; !ok {
			t.Errorf("cy.json lacks %q", key)
		}
	}
	for key := range messages["cy"] {
		if _, ok := messages["en"][key]; !ok {
			t.Errorf("en.json lacks %q", key)
		}
	}
	// Every vocabulary word a page can show has a message.
	for _, lang := range Langs {
		for _, got := range []string{
			tr(lang, "chart.trend_desc", 30, "2026-10-24", "2026-11-22", 7, 2, tr(lang, "count.fewer", 5)),
			tr(lang, "layout.privacy", 5), tr(lang, "review.saved_version", 3), tr(lang, "review.page_of", 1, 2),
		} {
			if strings.Contains(got, "%!") {
				t.Errorf("%s: bad format: %s", lang, got)
			}
		}
	}
	for _, key := range []string{"status.approved", "status.blocked", "status.restricted", "status.unknown", "review.new",
		"review.under-review", "review.approved", "review.kept-blocked"} {
		if _, ok := messages["en"][key]; !ok {
			t.Errorf("missing %q", key)
		}
	}
}

func TestSignInReplacesTheSession(t *testing.T) {
	db := storetest.SQLite(t)
	e := newEnv(t, db, nil)
	b := e.signIn("sector@example.org")
	u, _ := url.Parse(e.srv.URL)
	old := b.c.Jar.Cookies(u)[0].Value
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			old = ck.Value
		}
	}
	b.get("/sign-in")
	if r := b.post("/sign-in", url.Values{"email": {"sector@example.org"}, "password": {e.pw["sector@example.org"]}}); r.code != 303 {
		t.Fatalf("second sign-in: %d", r.code)
	}
	if _, err := loadSession(context.Background(), db, old); err == nil {
		t.Fatal("the session from before sign-in still works")
	}
	if r := b.get("/"); r.code != 200 {
		t.Fatalf("new session: %d", r.code)
	}
	// Signing out ends the session on the server, not just in the browser.
	var cur string
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			cur = ck.Value
		}
	}
	if r := b.post("/sign-out", nil); r.code != 303 {
		t.Fatalf("sign out: %d", r.code)
	}
	if _, err := loadSession(context.Background(), db, cur); err == nil {
		t.Fatal("the session survives sign-out")
	}
}

// TestLowThresholdIsWarnedOnEveryPage: a hub run with k below the default
// (the demo runs k=1) says so on every page, in both languages; the default
// shows no warning.
func TestLowThresholdIsWarnedOnEveryPage(t *testing.T) {
	cases := []struct {
		k    int
		lang string
		want string // "" for no warning
	}{
		{5, "en", ""},
		{1, "en", "Small counts are not hidden on this hub: its threshold is 1"},
		{1, "cy", "Nid yw niferoedd bach wedi’u cuddio ar yr hwb hwn: ei drothwy yw 1"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("k=%d/%s", c.k, c.lang), func(t *testing.T) {
			e := newEnv(t, storetest.SQLite(t), func(o *Options) { o.Privacy = aggregates.Privacy{K: c.k} })
			a := e.signIn("sector@example.org")
			for _, path := range []string{"/?lang=" + c.lang, "/orgs?lang=" + c.lang, "/matrix?lang=" + c.lang, "/review?lang=" + c.lang} {
				body := a.get(path).body
				if got := strings.Contains(body, "govuk-warning-text"); got != (c.want != "") {
					t.Errorf("%s: warning shown = %v, want %v", path, got, c.want != "")
				}
				if c.want != "" && !strings.Contains(body, c.want) {
					t.Errorf("%s: warning text missing %q", path, c.want)
				}
			}
		})
	}
}

// TestIndexFollowsPublishedVersions: the whitelist index is built once per
// published version and rebuilt when a new version is published.
func TestIndexFollowsPublishedVersions(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), nil)
	first := e.d.index()
	if again := e.d.index(); again != first {
		t.Fatal("the same version must reuse its index")
	}
	doc := e.cat.Document()
	var org, svc string
	for _, p := range doc.Policies {
		if p.Status != whitelist.Approved {
			org, svc = p.Org, p.Service
			break
		}
	}
	if org == "" {
		t.Fatal("fixture has no policy that is not approved")
	}
	if _, err := e.cat.SetPolicy(context.Background(), whitelist.Policy{Org: org, Service: svc, Status: whitelist.Approved}, "test"); err != nil {
		t.Fatal(err)
	}
	next := e.d.index()
	if next == first {
		t.Fatal("a new version must get a new index")
	}
	if p := next.policy[[2]string{org, svc}]; p == nil || p.Status != whitelist.Approved {
		t.Fatalf("the new index does not show the new policy: %+v", p)
	}
}
