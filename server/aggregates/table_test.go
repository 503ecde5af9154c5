package aggregates_test

import (
	"context"
	"testing"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestOrgServiceTableRowsAndColumns: a hidden cell stays hidden whichever
// margin a reader subtracts from, and every page takes the same figures.
func TestOrgServiceTableRowsAndColumns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db,
			row{key("2026-11-20", "org-a", "zoom", "tcp-reset", "", "meeting"), 27},
			row{key("2026-11-20", "org-a", "miro", "tcp-reset", "", "meeting"), 40},
			row{key("2026-11-20", "org-b", "zoom", "tcp-reset", "", "meeting"), 3},
			row{key("2026-11-20", "org-b", "miro", "tcp-reset", "", "meeting"), 50},
			row{key("2026-11-20", "org-c", "slack", "tcp-reset", "", "meeting"), 60},
		)
		p := aggregates.Privacy{K: 5}
		w := aggregates.LastDays(now, aggregates.DefaultDays)
		tab, err := aggregates.GetOrgServiceTable(ctx, db, p, w)
		if err != nil {
			t.Fatal(err)
		}
		// org-b/zoom (3) is hidden; its column (zoom total 30) would reveal
		// it from org-a/zoom, its row (org-b total 53) from org-b/miro.
		for _, c := range []struct {
			org, svc string
			hidden   bool
		}{
			{"org-b", "zoom", true}, {"org-a", "zoom", true}, {"org-b", "miro", true},
			{"org-c", "slack", false},
		} {
			if got := tab.Cell(c.org, c.svc).Suppressed; got != c.hidden {
				t.Errorf("%s/%s hidden = %v, want %v", c.org, c.svc, got, c.hidden)
			}
		}
		// Whatever stays visible, no row or column gives away a small number.
		rows := map[string]int64{}
		cols := map[string]int64{}
		for _, pr := range tab.Pairs("") {
			if pr.Count.Suppressed {
				rows[pr.Org] += aggregates.RawOf(pr)
				cols[pr.Service] += aggregates.RawOf(pr)
			}
		}
		for k, s := range rows {
			if s > 0 && s < 5 {
				t.Errorf("row %s: hidden cells add up to %d", k, s)
			}
		}
		for k, s := range cols {
			if s > 0 && s < 5 {
				t.Errorf("column %s: hidden cells add up to %d", k, s)
			}
		}
		// The organisation page and the review item agree with the table.
		org, err := aggregates.GetOrg(ctx, db, p, w, "org-b")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range org.Services {
			if it.Count.Suppressed != tab.Cell("org-b", it.Key).Suppressed {
				t.Errorf("org page and table disagree on %s", it.Key)
			}
		}
		item, err := aggregates.GetService(ctx, db, p, w, "zoom", "org-a")
		if err != nil {
			t.Fatal(err)
		}
		if !item.Total.Suppressed || !item.Methods[0].Count.Suppressed {
			t.Errorf("review item shows a hidden cell: %s", item.Total)
		}
		pairs, _ := aggregates.GetPairs(ctx, db, p, w, "org-c")
		if len(pairs) != 1 || pairs[0].Count.String() != "60" {
			t.Errorf("pairs for org-c: %+v", pairs)
		}
	})
}
