package dashboard

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestCommonGroundPage: any signed-in role sees, per category, how many
// organisations approve and block each tool (exact: policies are not
// reports), where each is blocked, a chart with its table, and the
// agreements nearest to everyone; never a decline.
func TestCommonGroundPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		ctx := context.Background()
		if _, err := e.cat.Propose(ctx, "video-c", "north", "", "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cat.Endorse(ctx, "south", "video-c", "t"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cat.Decline(ctx, "north", "video-c", "secret reason", "t"); err != nil {
			t.Fatal(err)
		}
		viewer := e.signIn("viewer@example.org")
		r := viewer.get("/common-ground?category=video")
		if r.code != 200 {
			t.Fatalf("common ground: %d", r.code)
		}
		// video-a: approved by south, blocked by north (hostile name escaped).
		row := regexp.MustCompile(`(?s)<tr class="govuk-table__row">\s*<th[^>]*><a[^>]*href="/services/video-a"[^<]*</a></th>(.*?)</tr>`).FindStringSubmatch(r.body)
		if row == nil {
			t.Fatalf("no video-a row:\n%s", r.body)
		}
		cells := regexp.MustCompile(`<td[^>]*>([^<]*)</td>`).FindAllStringSubmatch(row[1], -1)
		if len(cells) != 5 || cells[0][1] != "1" || cells[1][1] != "1" || !strings.Contains(cells[4][1], "Northshire &lt;script&gt;") {
			t.Errorf("video-a cells %q", cells)
		}
		for _, want := range []string{`role="img"`, "Bar chart of 2 tools", `id="table-common-agreements"`, `href="/services/video-c"`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(r.body, "secret reason") {
			t.Error("a decline's reason on the common-ground page")
		}
		if r := viewer.get("/common-ground?category=email"); r.code != http.StatusNotFound {
			t.Errorf("unknown category: %d", r.code)
		}
		if r := viewer.get("/common-ground?category=video&export=common-ground&format=csv"); r.code != 200 || !strings.Contains(r.body, "Service") {
			t.Errorf("CSV export: %d %s", r.code, r.body)
		}
	})
}
