package aggregates

import (
	"context"
	"fmt"
	"sort"

	"github.com/detour-project/detour/server/store"
)

// OrgServiceTable is the organisation × service table of report counts
// over a window, with its margins, suppressed as a whole. The dashboard
// shows it cell by cell (review queue, organisation pages), by row (each
// organisation's total, the organisations list) and by column (each
// service's total on the overview), so a hidden cell must stay hidden
// whichever margin a reader subtracts from:
//
//   - service totals are grouped against the grand total (as the overview's
//     top services list is), and so are organisation totals;
//   - cells are hidden below k, then, repeatedly until nothing changes, in
//     every row and every column whose hidden cells add up to 1..k-1 the
//     smallest visible cells are hidden too.
//
// Every page that shows a part of the table takes it from here, so all of
// them agree.
type OrgServiceTable struct {
	Window        Window
	Total         Count
	OrgTotals     map[string]Count
	ServiceTotals map[string]Count
	cells         map[[2]string]Count
	pairs         []Pair
}

// Cell is the count of service at org (zero when nothing was reported).
func (t *OrgServiceTable) Cell(org, service string) Count {
	if c, ok := t.cells[[2]string{org, service}]; ok {
		return c
	}
	n := int64(0)
	return Count{Value: &n, k: t.Total.k}
}

// Pairs lists the non-empty cells, largest first; org "" means all.
func (t *OrgServiceTable) Pairs(org string) []Pair {
	var out []Pair
	for _, p := range t.pairs {
		if org == "" || p.Org == org {
			out = append(out, p)
		}
	}
	return out
}

// GetOrgServiceTable reads and suppresses the table over w.
func GetOrgServiceTable(ctx context.Context, q store.Querier, p Privacy, w Window) (*OrgServiceTable, error) {
	return rollups.orgServiceTable(ctx, q, p, w)
}

func (s source) orgServiceTable(ctx context.Context, q store.Querier, p Privacy, w Window) (*OrgServiceTable, error) {
	// Summed in SQL: handing rows across database/sql is the dearer part
	// (measured: 45 ms of CPU against 59 ms for summing in Go, over the
	// ~63,000 day rows a 30-day window held at 10 million reports before
	// the span rollup cut that to about a fifth).
	src, args, err := s.pairRows(w)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT org, service, SUM(n) FROM ("+src+") AS r GROUP BY org, service", args...)
	if err != nil {
		return nil, fmt.Errorf("aggregates: org × service: %w", err)
	}
	sums := map[[2]string]int64{}
	for rows.Next() {
		var o, s string
		var n int64
		if err := rows.Scan(&o, &s, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("aggregates: org × service: %w", err)
		}
		sums[[2]string{o, s}] += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("aggregates: org × service: %w", err)
	}
	t := &OrgServiceTable{Window: w, OrgTotals: map[string]Count{}, ServiceTotals: map[string]Count{}, cells: map[[2]string]Count{}}
	for k, n := range sums {
		t.pairs = append(t.pairs, Pair{Org: k[0], Service: k[1], raw: n})
	}
	sort.Slice(t.pairs, func(i, j int) bool {
		a, b := t.pairs[i], t.pairs[j]
		if a.raw != b.raw {
			return a.raw > b.raw
		}
		if a.Org != b.Org {
			return a.Org < b.Org
		}
		return a.Service < b.Service
	})
	// Margins.
	orgSum, svcSum := map[string]int64{}, map[string]int64{}
	var total int64
	for _, pr := range t.pairs {
		orgSum[pr.Org] += pr.raw
		svcSum[pr.Service] += pr.raw
		total += pr.raw
	}
	margin := func(m map[string]int64, dst map[string]Count) {
		var rs []raw
		for k, n := range m {
			rs = append(rs, raw{k, n})
		}
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].n != rs[j].n {
				return rs[i].n > rs[j].n
			}
			return rs[i].key < rs[j].key
		})
		for _, it := range p.items(rs, total, 0) {
			dst[it.Key] = it.Count
		}
	}
	margin(orgSum, t.OrgTotals)
	margin(svcSum, t.ServiceTotals)
	t.Total = p.Count(total)

	// Cells: primary, then secondary over rows and columns until stable.
	hidden := make([]bool, len(t.pairs))
	for i, pr := range t.pairs {
		hidden[i] = pr.raw > 0 && pr.raw < p.k()
	}
	byOrg, bySvc := map[string][]int{}, map[string][]int{}
	for i, pr := range t.pairs {
		byOrg[pr.Org] = append(byOrg[pr.Org], i)
		bySvc[pr.Service] = append(bySvc[pr.Service], i)
	}
	groups := make([][]int, 0, len(byOrg)+len(bySvc))
	for _, g := range byOrg {
		groups = append(groups, g)
	}
	for _, g := range bySvc {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i][0] < groups[j][0] }) // deterministic order
	for changed := true; changed; {
		changed = false
		for _, g := range groups {
			parts := make([]int64, len(g))
			hid := make([]bool, len(g))
			var s int64
			for j, i := range g {
				parts[j], hid[j] = t.pairs[i].raw, hidden[i]
				if hidden[i] {
					s += parts[j]
				}
			}
			p.secondary(parts, hid, s)
			for j, i := range g {
				if hid[j] && !hidden[i] {
					hidden[i], changed = true, true
				}
			}
		}
	}
	for i := range t.pairs {
		if hidden[i] {
			t.pairs[i].Count = p.hidden()
		} else {
			t.pairs[i].Count = p.Count(t.pairs[i].raw)
		}
		t.cells[[2]string{t.pairs[i].Org, t.pairs[i].Service}] = t.pairs[i].Count
	}
	// Listed by what they show: a hidden cell's place says nothing of its size.
	sort.SliceStable(t.pairs, func(i, j int) bool {
		a, b := t.pairs[i], t.pairs[j]
		return shownBefore(a.Count, b.Count, a.Org+"\x00"+a.Service, b.Org+"\x00"+b.Service)
	})
	return t, nil
}
