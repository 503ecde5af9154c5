package dashboard

import (
	"net/url"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestCatalogFromTheDashboard: a sector admin adds and edits services; each
// save is a new signed version, with catalog import's checks (one host,
// one service); nobody else may.
func TestCatalogFromTheDashboard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		sector := e.signIn("sector@example.org")
		v0 := e.cat.Document().Version
		add := url.Values{"id": {"chat-d"}, "name": {"Chat D " + hostile}, "vendor": {"D"}, "category": {"chat"},
			"hosts": {"chat.d.example\r\nTalk.D.example"}, "url": {"https://chat.d.example/"}, "features": {"threads\nreactions"}}
		r := sector.post("/catalog", add)
		if r.code != 200 || !strings.Contains(r.body, "signed whitelist version") {
			t.Fatalf("add: %d", r.code)
		}
		if strings.Contains(r.body, "<script>alert") {
			t.Fatal("a service name is not escaped")
		}
		doc := e.cat.Document()
		if doc.Version != v0+1 {
			t.Fatalf("version %d, want %d", doc.Version, v0+1)
		}
		s := doc.ServiceForHost("talk.d.example")
		if s == nil || s.ID != "chat-d" || len(s.Features) != 2 || s.Category != "chat" {
			t.Fatalf("added service: %+v", s)
		}
		for _, c := range []struct {
			name string
			path string
			form url.Values
			want int
			text string
		}{
			{"a host of another service", "/catalog", url.Values{"id": {"copy"}, "name": {"Copy"}, "category": {"video"},
				"hosts": {"meet.a.example"}, "url": {"https://copy.example/"}}, 400, "belongs to another service"},
			{"same id again", "/catalog", add, 409, "exists already"},
			{"bad host", "/catalog/chat-d", url.Values{"name": {"Chat D"}, "category": {"chat"}, "hosts": {"not a host"}, "url": {"https://chat.d.example/"}}, 400, "host name"},
			{"bad url", "/catalog/chat-d", url.Values{"name": {"Chat D"}, "category": {"chat"}, "hosts": {"chat.d.example"}, "url": {"javascript:alert(1)"}}, 400, "http or https"},
			{"unknown category", "/catalog/chat-d", url.Values{"name": {"Chat D"}, "category": {"games"}, "hosts": {"chat.d.example"}, "url": {"https://chat.d.example/"}}, 400, "category"},
			{"unknown service", "/catalog/nothing", url.Values{"name": {"X"}}, 404, ""},
		} {
			r := sector.post(c.path, c.form)
			if r.code != c.want || !strings.Contains(r.body, c.text) {
				t.Errorf("%s: %d, want %d with %q", c.name, r.code, c.want, c.text)
			}
		}
		if e.cat.Document().Version != v0+1 {
			t.Fatal("a refused change made a version")
		}
		// Editing moves a host out and renames.
		if r := sector.get("/catalog/chat-d"); r.code != 200 || !strings.Contains(r.body, "talk.d.example") {
			t.Fatalf("edit form: %d", r.code)
		}
		r = sector.post("/catalog/chat-d", url.Values{"name": {"Chat Dee"}, "vendor": {"D"}, "category": {"chat"}, "hosts": {"chat.d.example"}, "url": {"https://chat.d.example/"}})
		if r.code != 200 {
			t.Fatalf("edit: %d", r.code)
		}
		doc = e.cat.Document()
		if doc.Version != v0+2 || doc.ServiceForHost("talk.d.example") != nil || doc.ServiceForHost("chat.d.example").Name != "Chat Dee" {
			t.Fatal("the edit is not in the new version")
		}
		if a := sector.get("/audit"); !strings.Contains(a.body, "Catalog changed") {
			t.Error("catalog edits are not in the audit log")
		}
		orgAdmin, viewer := e.signIn("north-admin@example.org"), e.signIn("viewer@example.org")
		for _, b := range []*browser{orgAdmin, viewer} {
			if r := b.get("/catalog"); r.code != 403 {
				t.Errorf("non-sector GET /catalog: %d", r.code)
			}
			b.get("/")
			if r := b.post("/catalog/chat-d", url.Values{"name": {"Taken"}, "category": {"chat"}, "hosts": {"chat.d.example"}, "url": {"https://chat.d.example/"}}); r.code != 403 {
				t.Errorf("non-sector POST: %d", r.code)
			}
		}
		if e.cat.Document().Version != v0+2 {
			t.Fatal("a refused request changed the catalog")
		}
	})
}
