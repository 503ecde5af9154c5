package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
)

// TestAgreementPagesAndForum: an organisation admin proposes and endorses
// (its policy becomes approved in the same version), a sector admin answers
// for another organisation, a decline needs a reason that is shown to
// filtering owners only; the forum is theirs alone; every role rule holds
// against crafted requests; hostile text is escaped.
func TestAgreementPagesAndForum(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		admin := e.signIn("north-admin@example.org")
		sector := e.signIn("sector@example.org")
		viewer := e.signIn("north-viewer@example.org")
		anyViewer := e.signIn("viewer@example.org")

		// Viewers see neither the pages nor the links to them.
		for _, b := range []*browser{viewer, anyViewer} {
			for _, path := range []string{"/agreements", "/forum", "/forum/services/video-c"} {
				if r := b.get(path); r.code != http.StatusForbidden {
					t.Errorf("viewer GET %s: %d, want 403", path, r.code)
				}
			}
			if r := b.get("/"); strings.Contains(r.body, `href="/agreements"`) || strings.Contains(r.body, `href="/forum"`) {
				t.Error("a viewer's navigation links to agreements or the forum")
			}
			b.get("/")
			if r := b.post("/agreements", url.Values{"service": {"video-c"}, "by": {"north"}}); r.code != http.StatusForbidden {
				t.Errorf("viewer proposes: %d", r.code)
			}
		}

		// Propose: without a CSRF token refused; the org admin's "by" is its
		// own organisation whatever the form says.
		admin.get("/agreements")
		if r := admin.post("/agreements", url.Values{"service": {"video-c"}, "csrf": {"forged"}}); r.code != http.StatusForbidden {
			t.Fatalf("propose without a valid CSRF token: %d", r.code)
		}
		admin.get("/agreements")
		r := admin.post("/agreements", url.Values{"service": {"video-c"}, "by": {"south"}, "note": {"Works for guests " + hostile}})
		if r.code != http.StatusSeeOther || r.loc != "/agreements/video-c?saved=1" {
			t.Fatalf("propose: %d %s %s", r.code, r.loc, r.body)
		}
		list, _ := e.cat.Agreements(ctx)
		if len(list) != 1 || list[0].ProposedBy != "north" || list[0].ProposedActor != "north-admin@example.org" {
			t.Fatalf("after propose: %+v", list)
		}
		v0 := e.cat.Document().Version
		page := admin.get("/agreements/video-c")
		if page.code != 200 || strings.Contains(page.body, hostile) || !strings.Contains(page.body, "Works for guests &lt;script&gt;") {
			t.Fatalf("agreement page: %d, hostile note not escaped", page.code)
		}
		if r := admin.post("/agreements", url.Values{"service": {"video-c"}}); r.code != http.StatusBadRequest || !strings.Contains(r.body, "already has an agreement") {
			t.Errorf("propose twice: %d", r.code)
		}

		// Endorse: north's policy for video-c becomes approved in the same
		// version, and the signed document names north.
		admin.get("/agreements/video-c")
		if r := admin.post("/agreements/video-c/answer", url.Values{"decision": {"endorsed"}, "org": {"south"}}); r.code != http.StatusSeeOther {
			t.Fatalf("endorse: %d %s", r.code, r.body)
		}
		d := e.cat.Document()
		if d.Version != v0+1 || len(d.Agreements) != 1 || !slices.Equal(d.Agreements[0].EndorsedBy, []string{"north"}) {
			t.Fatalf("after endorsing: v%d %+v", d.Version, d.Agreements)
		}
		for _, p := range d.Policies {
			if p.Org == "north" && p.Service == "video-c" && p.Status != whitelist.Approved {
				t.Fatalf("north's policy: %+v", p)
			}
		}
		// An org admin cannot answer for another organisation by crafting
		// the form (the org is its own), and a viewer cannot answer at all.
		viewer.get("/")
		if r := viewer.post("/agreements/video-c/answer", url.Values{"decision": {"endorsed"}, "org": {"north"}}); r.code != http.StatusForbidden {
			t.Errorf("viewer answers: %d", r.code)
		}

		// Decline needs a reason; the sector admin answers for south.
		sector.get("/agreements/video-c")
		if r := sector.post("/agreements/video-c/answer", url.Values{"decision": {"declined"}, "org": {"south"}}); r.code != http.StatusBadRequest {
			t.Errorf("decline without a reason: %d", r.code)
		}
		secret := "Security review pending " + hostile
		if r := sector.post("/agreements/video-c/answer", url.Values{"decision": {"declined"}, "org": {"south"}, "reason": {secret}}); r.code != http.StatusSeeOther {
			t.Fatalf("sector declines for south: %d %s", r.code, r.body)
		}
		if r := sector.post("/agreements/video-c/answer", url.Values{"decision": {"endorsed"}, "org": {"nowhere"}}); r.code != http.StatusForbidden {
			t.Errorf("answer for an unknown organisation: %d", r.code)
		}
		if e.cat.Document().Version != v0+1 {
			t.Errorf("a decline that withdrew nothing made a version")
		}
		page = admin.get("/agreements/video-c")
		if !strings.Contains(page.body, "Security review pending &lt;script&gt;") || strings.Contains(page.body, hostile) {
			t.Error("the decline's reason is not shown (escaped) to another organisation's filtering owner")
		}

		// The forum: a post on the agreement and one on a service thread,
		// each naming the poster's organisation, escaped, audited.
		admin.get("/agreements/video-c")
		if r := admin.post("/agreements/video-c/posts", url.Values{"body": {"We use it daily " + hostile}}); r.code != http.StatusSeeOther {
			t.Fatalf("post: %d %s", r.code, r.body)
		}
		if r := admin.post("/agreements/video-c/posts", url.Values{"body": {"   "}}); r.code != http.StatusBadRequest {
			t.Errorf("empty post: %d", r.code)
		}
		if r := admin.post("/agreements/video-c/posts", url.Values{"body": {"a\x00b"}}); r.code != http.StatusBadRequest {
			t.Errorf("post with NUL: %d", r.code)
		}
		sector.get("/forum/services/video-a")
		if r := sector.post("/forum/services/video-a/posts", url.Values{"body": {"Anyone assessed Video A?"}}); r.code != http.StatusSeeOther {
			t.Fatalf("service thread post: %d", r.code)
		}
		page = sector.get("/agreements/video-c")
		if !strings.Contains(page.body, "We use it daily &lt;script&gt;") || !strings.Contains(page.body, "Northshire &lt;script&gt;") {
			t.Error("the post, with the poster's organisation, is not on the agreement page")
		}
		thread := admin.get("/forum/services/video-a")
		if !strings.Contains(thread.body, "Anyone assessed Video A?") || !strings.Contains(thread.body, "Sector administrator") {
			t.Error("the service thread does not show the sector admin's post")
		}
		forum := admin.get("/forum")
		if !strings.Contains(forum.body, `href="/forum/services/video-a"`) || !strings.Contains(forum.body, `href="/agreements/video-c#posts"`) {
			t.Error("the forum does not list both threads")
		}
		viewer.get("/")
		if r := viewer.post("/forum/services/video-a/posts", url.Values{"body": {"sneaky"}}); r.code != http.StatusForbidden {
			t.Errorf("viewer posts: %d", r.code)
		}
		if r := admin.get("/forum/services/no-such"); r.code != http.StatusNotFound {
			t.Errorf("unknown service thread: %d", r.code)
		}
		var posts int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM dash_audit_log WHERE action = 'forum-post'`).Scan(&posts)
		if posts != 2 {
			t.Errorf("%d forum posts audited, want 2", posts)
		}
		// Nothing of the discussion or the decline is in the signed document.
		for _, p := range e.cat.Document().Policies {
			if strings.Contains(p.Note, "Security review") || strings.Contains(p.Note, "daily") {
				t.Error("discussion leaked into a policy note")
			}
		}
		// Exports follow the page's rule.
		if r := viewer.get("/agreements?export=agreements&format=csv"); r.code != http.StatusForbidden {
			t.Errorf("viewer exports agreements: %d", r.code)
		}
	})
}
