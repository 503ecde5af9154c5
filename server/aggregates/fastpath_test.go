package aggregates_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// Every page read through the rollups is exactly the page the fine
// counters give when summed row by row, suppression included: the same
// figures shown, the same ones hidden, in the same order, over windows that
// start and end on every kind of run boundary, on both engines.
func TestRollupPagesMatchCounters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
			t.Fatal(err)
		}
		orgs := []string{"north", "south", "east", "west"}
		services := []string{"zoom", "slack", "miro", "docs", "trello"}
		rng := rand.New(rand.NewPCG(15, 5))
		pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
		// Sparse and small, so that many figures fall under k and secondary
		// suppression has work to do; one busy pair so that some show.
		for range 1500 {
			day := now.AddDate(0, 0, -rng.IntN(100)).Format("2006-01-02")
			k := key(day, pick(orgs...), pick(services...), pick("dns-nxdomain", "tcp-reset", "tls-reset"),
				pick("", "zscaler"), pick("meeting", "chat", "other"))
			if rng.IntN(4) == 0 {
				k.Org, k.Service = "north", "zoom"
			}
			if err := aggregates.Increment(ctx, db, k, int64(1+rng.IntN(3))); err != nil {
				t.Fatal(err)
			}
		}
		var shown, hidden int
		same := func(what string, got, want any) {
			t.Helper()
			g, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			w, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if string(g) != string(w) {
				t.Fatalf("%s through the rollups differs from the counters:\n got %s\nwant %s", what, g, w)
			}
			shown += strings.Count(string(w), `"suppressed":false`)
			hidden += strings.Count(string(w), `"suppressed":true`)
		}
		type window struct {
			p         aggregates.Privacy
			back, len int // ending back days before now, len days long
		}
		var windows []window
		for _, back := range []int{0, 5, 13} { // ends on various run boundaries
			for _, n := range []int{7, 30, 90} {
				windows = append(windows, window{aggregates.Privacy{K: 5}, back, n})
			}
			windows = append(windows, window{aggregates.Privacy{K: 10, Round: true}, back, 30})
		}
		for _, c := range windows {
			p, end := c.p, now.AddDate(0, 0, -c.back)
			w := aggregates.LastDays(end, c.len)
			name := fmt.Sprintf("k=%d %s..%s", p.K, w.From, w.To)
			ft, err1 := aggregates.GetOrgServiceTable(ctx, db, p, w)
			rt, err2 := aggregates.RawTable(ctx, db, p, w)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			same(name+" table", []any{ft.Pairs(""), ft.OrgTotals, ft.ServiceTotals, ft.Total},
				[]any{rt.Pairs(""), rt.OrgTotals, rt.ServiceTotals, rt.Total})
			for i, org := range append([]string{""}, orgs...) {
				got, err1 := aggregates.GetOverview(ctx, db, p, w, org)
				want, err2 := aggregates.RawOverview(ctx, db, p, w, org)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				same(name+" overview "+org, got, want)
				svcs := services // every service across organisations, two at each
				if org != "" {
					svcs = []string{"zoom", services[i]}
				}
				for _, svc := range svcs {
					got, err1 := aggregates.GetService(ctx, db, p, w, svc, org)
					want, err2 := aggregates.RawDetail(ctx, db, p, w, org, svc)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					same(name+" service "+svc+" at "+org, got, want)
				}
				if org == "" {
					continue
				}
				gotOrg, err1 := aggregates.GetOrg(ctx, db, p, w, org)
				wantOrg, err2 := aggregates.RawOrg(ctx, db, p, w, org)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				same(name+" organisation "+org, gotOrg, wantOrg)
				if c.len == aggregates.DefaultDays {
					got, err1 := aggregates.GetReport(ctx, db, p, end, org)
					want, err2 := aggregates.RawReport(ctx, db, p, end, org)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					same(name+" report "+org, got, want)
				}
			}
		}
		// The comparison means something only if both kinds of figure occur.
		if shown == 0 || hidden == 0 {
			t.Fatalf("%d figures shown and %d hidden: the data does not exercise suppression", shown, hidden)
		}
		t.Logf("%d figures shown and %d hidden, identically", shown, hidden)
	})
}
