package aggregates_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

var now = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func seed(t *testing.T, db *store.DB, rows ...struct {
	k aggregates.Key
	n int64
}) {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := aggregates.Increment(ctx, db, r.k, r.n); err != nil {
			t.Fatal(err)
		}
	}
}

type row = struct {
	k aggregates.Key
	n int64
}

func key(day, org, svc, m, v, need string) aggregates.Key {
	return aggregates.Key{Day: day, Org: org, Service: svc, Method: m, Vendor: v, Need: need}
}

func TestQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		seed(t, db,
			row{key("2026-11-22", "org-a", "zoom", "dns-nxdomain", "", "meeting"), 20},
			row{key("2026-11-22", "org-a", "zoom", "dns-nxdomain", "", "meeting"), 5}, // increments add up
			row{key("2026-11-21", "org-b", "zoom", "http-blockpage", "fortinet", "meeting"), 7},
			row{key("2026-11-20", "org-a", "miro", "tls-reset", "", "project-board"), 2},
			row{key("2026-11-01", "org-b", "trello", "tcp-reset", "", "project-board"), 9},
			row{key("2026-09-01", "org-b", "trello", "tcp-reset", "", "project-board"), 100}, // outside the window
		)
		p := aggregates.Privacy{K: 5}
		w := aggregates.LastDays(now, 30)
		ov, err := aggregates.GetOverview(ctx, db, p, w, "")
		if err != nil {
			t.Fatal(err)
		}
		if ov.Total.String() != "43" || len(ov.Trend) != 30 || ov.Week.From != "2026-11-16" {
			t.Fatalf("overview: total %s, %d days, week %+v", ov.Total, len(ov.Trend), ov.Week)
		}
		// miro's 2 is suppressed, and so must be the next smallest (trello 9)
		// because 43 - 25 - 7 - 9 would reveal it.
		got := map[string]string{}
		for _, it := range ov.TopServices {
			got[it.Key] = it.Count.String()
		}
		if got["zoom"] != "32" || got["miro"] != "fewer than 5" || got["trello"] != "fewer than 5" {
			t.Fatalf("top services: %v", got)
		}
		// Trello (9) is larger than miro (2), but hidden rows are listed by
		// name: their order must not rank them.
		if ov.TopServices[1].Key != "miro" || ov.TopServices[2].Key != "trello" {
			t.Fatalf("top services order: %+v", ov.TopServices)
		}
		// The week holds 25+7+2 = 34; the day with 2 is hidden, and so is
		// another day of the week so that 34 minus the rest says nothing.
		var shown, hidden int
		for _, d := range ov.Trend {
			if d.Day >= ov.Week.From && d.Count.Suppressed {
				hidden++
			}
			if d.Day >= ov.Week.From && !d.Count.Suppressed && d.Count.Int() > 0 {
				shown++
			}
		}
		if ov.BlocksThisWeek.String() != "34" || hidden < 2 {
			t.Fatalf("week %s, hidden days %d, shown %d", ov.BlocksThisWeek, hidden, shown)
		}

		svc, err := aggregates.GetService(ctx, db, p, w, "zoom", "")
		if err != nil {
			t.Fatal(err)
		}
		if svc.Total.String() != "32" || len(svc.Methods) != 2 || svc.Vendors[0].Key != "" {
			t.Fatalf("service: %+v", svc)
		}
		org, err := aggregates.GetOrg(ctx, db, p, w, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		if org.Total.String() != "27" || len(org.Services) != 2 {
			t.Fatalf("org: %+v", org)
		}
		// 27 - 25 reveals miro's 2 unless zoom hides too: both hidden.
		if !org.Services[1].Count.Suppressed || !org.Services[0].Count.Suppressed {
			t.Fatalf("org services must hide together: %+v", org.Services)
		}
		pairs, err := aggregates.GetPairs(ctx, db, p, w, "")
		if err != nil {
			t.Fatal(err)
		}
		// Shown pairs first, largest first; hidden ones after, by name, so a
		// hidden pair's place says nothing of its size.
		if len(pairs) != 4 || pairs[0].Count.Suppressed || !pairs[3].Count.Suppressed {
			t.Fatalf("pairs: %+v", pairs)
		}
		for i := 1; i < len(pairs); i++ {
			a, b := pairs[i-1], pairs[i]
			if a.Count.Suppressed && b.Count.Suppressed && a.Org+a.Service > b.Org+b.Service {
				t.Fatalf("hidden pairs not in name order: %+v", pairs)
			}
		}
		// Pairs agree with the organisation's page: org-a's zoom (25) is
		// hidden beside miro's 2, since 27 - 25 would reveal it.
		for _, pr := range pairs {
			if pr.Org == "org-a" && !pr.Count.Suppressed {
				t.Fatalf("pair %s/%s shown though its org page hides it", pr.Org, pr.Service)
			}
		}
		// A service hidden in the overview's list (trello, secondary) is
		// hidden on its own page too, parts and all.
		tr, err := aggregates.GetService(ctx, db, p, w, "trello", "")
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Total.Suppressed || !tr.Methods[0].Count.Suppressed {
			t.Fatalf("trello's page shows what the overview hides: %+v", tr)
		}
		// And the pair's detail (review item) is hidden as its org lists it.
		za, err := aggregates.GetService(ctx, db, p, w, "zoom", "org-a")
		if err != nil {
			t.Fatal(err)
		}
		if !za.Total.Suppressed {
			t.Fatalf("zoom at org-a shown: %s", za.Total)
		}

		rep, err := aggregates.GetReport(ctx, db, p, now, "org-b")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(rep)
		if !strings.Contains(string(b), `"k":5`) || rep.Org == nil || rep.Overview.Org != "org-b" {
			t.Fatalf("report: %s", b)
		}
	})
}
