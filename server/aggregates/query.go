package aggregates

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/detour-project/detour/server/store"
)

// Window is a range of whole UTC days, both ends included (YYYY-MM-DD).
type Window struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// LastDays is the window of n days ending on now's UTC day.
func LastDays(now time.Time, n int) Window {
	to := now.UTC()
	return Window{From: to.AddDate(0, 0, -(n - 1)).Format(time.DateOnly), To: to.Format(time.DateOnly)}
}

// Days lists every day of the window.
func (w Window) Days() []string {
	from, err1 := time.Parse(time.DateOnly, w.From)
	to, err2 := time.Parse(time.DateOnly, w.To)
	if err1 != nil || err2 != nil {
		return nil
	}
	var out []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// Item is one row of a breakdown: a service, method, vendor, need or org.
type Item struct {
	Key   string `json:"key"`
	Count Count  `json:"count"`
}

// Day is one point of a daily series.
type Day struct {
	Day   string `json:"day"`
	Count Count  `json:"count"`
}

// Overview is the dashboard's first page, for one organisation or (Org "")
// for every organisation.
type Overview struct {
	Org            string `json:"org,omitempty"`
	Window         Window `json:"window"`
	Week           Window `json:"week"`
	BlocksThisWeek Count  `json:"blocks_this_week"`
	Total          Count  `json:"total"` // over Window
	TopServices    []Item `json:"top_services"`
	Trend          []Day  `json:"trend"`
	Needs          []Item `json:"needs"`
}

// Detail is the breakdown of reports for one service (Service page) or one
// organisation (Organisation page), over a window.
type Detail struct {
	Service  string `json:"service,omitempty"`
	Org      string `json:"org,omitempty"`
	Window   Window `json:"window"`
	Total    Count  `json:"total"`
	Services []Item `json:"services,omitempty"` // organisation detail only
	Methods  []Item `json:"methods"`
	Vendors  []Item `json:"vendors"`
	Needs    []Item `json:"needs"`
	Daily    []Day  `json:"daily"`
}

// Pair is the count of reports of one service at one organisation.
type Pair struct {
	Org     string `json:"org"`
	Service string `json:"service"`
	Count   Count  `json:"count"`
	raw     int64  // the true count: for suppression only, never handed out
}

// TopN is how many services the overview lists.
const TopN = 10

// filter builds a WHERE clause for a window and optional org and service.
// Column names are fixed here; only values are parameters.
func filter(w Window, org, service string) (string, []any) {
	where := "day >= ? AND day <= ?"
	args := []any{w.From, w.To}
	if org != "" {
		where += " AND org = ?"
		args = append(args, org)
	}
	if service != "" {
		where += " AND service = ?"
		args = append(args, service)
	}
	return where, args
}

type raw struct {
	key string
	n   int64
}

// The tables scan reads: the counters, and their rollups (counts.go).
const (
	countsTable = "report_counts"
	pairsTable  = "report_pairs"
	needsTable  = "report_needs"
)

// source is where the pages' sums are read from. Pages read the rollups;
// rawRows reads the same sums from the counters alone, row by row, so the
// tests can check that every page read through the rollups is exactly the
// page the counters give, suppression included.
type source struct {
	pairs string // holds day, org, service, n
	needs string // holds day, org, need, n
	spans bool   // window sums from the span rollup (spans.go)
}

var (
	rollups = source{pairs: pairsTable, needs: needsTable, spans: true}
	rawRows = source{pairs: countsTable, needs: countsTable}
)

// arm is one GROUP BY of a scan: the rows of from (a table, or a
// parenthesised query with its own arguments) grouped by cols together.
type arm struct {
	from     string
	fromArgs []any
	cols     []string
}

// scan sums n over the rows matching where (the same filter for every arm)
// per value of each column of each arm: one statement, the arms' GROUP BYs
// joined by UNION ALL, each arm's combinations summed per column here. So
// the database hands over a row per combination of an arm's few columns (a
// few dozen), never one per combination of every column shown (thousands,
// at 10 million reports: passing rows through database/sql is what costs),
// and each arm reads the narrowest rollup that holds its columns. Each
// returned list is largest first (ties by key), except "day", which is in
// day order; total is the sum of the first arm's rows.
func scan(ctx context.Context, q store.Querier, arms []arm, where string, args []any) (map[string][]raw, int64, error) {
	width := 0
	var names []string
	for _, a := range arms {
		width = max(width, len(a.cols))
		names = append(names, a.cols...)
	}
	list := strings.Join(names, ", ")
	parts := make([]string, len(arms))
	var all []any
	for i, a := range arms {
		sel := append([]string{strconv.Itoa(i)}, a.cols...)
		for range width - len(a.cols) {
			sel = append(sel, "''")
		}
		parts[i] = "SELECT " + strings.Join(sel, ", ") + ", SUM(n) FROM " + a.from + " WHERE " + where + " GROUP BY " + strings.Join(a.cols, ", ")
		all = append(append(all, a.fromArgs...), args...)
	}
	rows, err := q.QueryContext(ctx, strings.Join(parts, " UNION ALL "), all...)
	if err != nil {
		return nil, 0, fmt.Errorf("aggregates: sum by %s: %w", list, err)
	}
	defer rows.Close()
	sums := map[string]map[string]int64{}
	for _, c := range names {
		sums[c] = map[string]int64{}
	}
	keys := make([]string, width)
	dest := make([]any, width+2)
	var idx int
	var n, total int64
	dest[0] = &idx
	for i := range keys {
		dest[i+1] = &keys[i]
	}
	dest[width+1] = &n
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, 0, fmt.Errorf("aggregates: sum by %s: %w", list, err)
		}
		if idx < 0 || idx >= len(arms) {
			return nil, 0, fmt.Errorf("aggregates: sum by %s: arm %d", list, idx)
		}
		for i, c := range arms[idx].cols {
			sums[c][keys[i]] += n
		}
		if idx == 0 {
			total += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("aggregates: sum by %s: %w", list, err)
	}
	out := make(map[string][]raw, len(sums))
	for col, m := range sums {
		rs := make([]raw, 0, len(m))
		for k, v := range m {
			rs = append(rs, raw{k, v})
		}
		sort.Slice(rs, func(a, b int) bool {
			if col != "day" && rs[a].n != rs[b].n {
				return rs[a].n > rs[b].n
			}
			return rs[a].key < rs[b].key
		})
		out[col] = rs
	}
	return out, total, nil
}

// serviceSums is each service's count over w, largest first: from the span
// rollup across every organisation, from the day rollup for one.
func (s source) serviceSums(ctx context.Context, q store.Querier, w Window, org string) ([]raw, error) {
	if org != "" {
		where, args := filter(w, org, "")
		by, _, err := scan(ctx, q, []arm{{from: s.pairs, cols: []string{"service"}}}, where, args)
		return by["service"], err
	}
	src, args, err := s.pairRows(w)
	if err != nil {
		return nil, err
	}
	by, _, err := scan(ctx, q, []arm{{from: "(" + src + ") AS r", fromArgs: args, cols: []string{"service"}}}, "1 = 1", nil)
	return by["service"], err
}

// items suppresses a breakdown against its total, keeping at most limit rows
// (0: all). Suppression runs on the whole list first; then the list is
// ordered by what it shows, hidden rows last by key, so that a hidden row's
// place in the list says nothing about its size.
func (p Privacy) items(rs []raw, total int64, limit int) []Item {
	parts := make([]int64, len(rs))
	for i, r := range rs {
		parts[i] = r.n
	}
	cs, _ := p.Group(parts, total)
	out := make([]Item, 0, len(rs))
	for i, r := range rs {
		out = append(out, Item{Key: r.key, Count: cs[i]})
	}
	sort.SliceStable(out, func(i, j int) bool { return shownBefore(out[i].Count, out[j].Count, out[i].Key, out[j].Key) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// shownBefore orders shown counts largest first, then hidden ones, ties by
// key.
func shownBefore(a, b Count, ka, kb string) bool {
	if a.Suppressed != b.Suppressed {
		return !a.Suppressed
	}
	if !a.Suppressed && a.Int() != b.Int() {
		return a.Int() > b.Int()
	}
	return ka < kb
}

// series fills every day of w, zero where nothing was counted.
func series(w Window, rs []raw) ([]string, []int64) {
	by := make(map[string]int64, len(rs))
	for _, r := range rs {
		by[r.key] = r.n
	}
	days := w.Days()
	vals := make([]int64, len(days))
	for i, d := range days {
		vals[i] = by[d]
	}
	return days, vals
}

func days(ds []string, cs []Count) []Day {
	out := make([]Day, len(ds))
	for i := range ds {
		out[i] = Day{Day: ds[i], Count: cs[i]}
	}
	return out
}

// GetOverview is the overview over window w (the trend's days), with
// "blocks this week" as the last seven days of it. org "" means every
// organisation.
func GetOverview(ctx context.Context, q store.Querier, p Privacy, w Window, org string) (*Overview, error) {
	return rollups.overview(ctx, q, p, w, org)
}

func (s source) overview(ctx context.Context, q store.Querier, p Privacy, w Window, org string) (*Overview, error) {
	// Every counter has one need, so the need rollup gives the days and
	// the total too.
	where, args := filter(w, org, "")
	by, total, err := scan(ctx, q, []arm{{from: s.needs, cols: []string{"day", "need"}}}, where, args)
	if err != nil {
		return nil, err
	}
	services, err := s.serviceSums(ctx, q, w, org)
	if err != nil {
		return nil, err
	}
	needs := by["need"]
	ds, vals := series(w, by["day"])
	week := Window{From: w.From, To: w.To}
	if len(ds) > 7 {
		week.From = ds[len(ds)-7]
	}
	inWeek := make([]bool, len(ds))
	var weekTotal int64
	for i, d := range ds {
		if d >= week.From {
			inWeek[i] = true
			weekTotal += vals[i]
		}
	}
	trend, tot, weekCount := p.groupNested(vals, total, inWeek, weekTotal)
	return &Overview{
		Org: org, Window: w, Week: week,
		BlocksThisWeek: weekCount, Total: tot,
		TopServices: p.items(services, total, TopN),
		Trend:       days(ds, trend),
		Needs:       p.items(needs, total, 0),
	}, nil
}

// GetService is the detail of one service across every organisation (or
// one, when org is set).
func GetService(ctx context.Context, q store.Querier, p Privacy, w Window, service, org string) (*Detail, error) {
	return rollups.detail(ctx, q, p, w, org, service)
}

// GetOrg is the detail of one organisation: its services ranked by reports.
// Its total and its services' counts are the OrgServiceTable's (the
// organisation's row), so the organisations list, the review queue and
// this page agree; when the organisation's total is hidden there, every
// figure of the page is.
func GetOrg(ctx context.Context, q store.Querier, p Privacy, w Window, org string) (*Detail, error) {
	return rollups.org(ctx, q, p, w, org)
}

func (s source) org(ctx context.Context, q store.Querier, p Privacy, w Window, org string) (*Detail, error) {
	d, err := s.detail(ctx, q, p, w, org, "")
	if err != nil {
		return nil, err
	}
	t, err := s.orgServiceTable(ctx, q, p, w)
	if err != nil {
		return nil, err
	}
	if c, ok := t.OrgTotals[org]; ok && c.Suppressed {
		p.hideAll(d)
		return d, nil
	}
	for i := range d.Services {
		d.Services[i].Count = t.Cell(org, d.Services[i].Key)
	}
	return d, nil
}

func (s source) detail(ctx context.Context, q store.Querier, p Privacy, w Window, org, service string) (*Detail, error) {
	where, args := filter(w, org, service)
	// Days from the day rollup where an index leads to the organisation's
	// rows; services and needs from the rollups when no service is named
	// (they have no service column); methods and vendors, which no rollup
	// holds, from the counters in one arm.
	var arms []arm
	switch {
	case service == "":
		arms = []arm{{from: s.pairs, cols: []string{"day"}}, {from: s.pairs, cols: []string{"service"}},
			{from: s.needs, cols: []string{"need"}}, {from: countsTable, cols: []string{"method", "vendor"}}}
	case org != "":
		arms = []arm{{from: s.pairs, cols: []string{"day"}}, {from: countsTable, cols: []string{"method", "vendor", "need"}}}
	default:
		arms = []arm{{from: countsTable, cols: []string{"day"}}, {from: countsTable, cols: []string{"method", "vendor", "need"}}}
	}
	by, total, err := scan(ctx, q, arms, where, args)
	if err != nil {
		return nil, err
	}
	d := &Detail{Service: service, Org: org, Window: w,
		Methods: p.items(by["method"], total, 0),
		Vendors: p.items(by["vendor"], total, 0),
		Needs:   p.items(by["need"], total, 0),
	}
	if service == "" {
		d.Services = p.items(by["service"], total, 0)
	}
	ds, vals := series(w, by["day"])
	cs, tot := p.Group(vals, total)
	d.Daily, d.Total = days(ds, cs), tot
	if service != "" {
		// A service's page must not show what the list it is reached from
		// hides: if its total is hidden there (even by secondary
		// suppression), it is hidden here, and so is every part of it.
		var hidden bool
		if org == "" {
			hidden, err = s.hiddenInList(ctx, q, p, w, service)
		} else {
			var t *OrgServiceTable
			if t, err = s.orgServiceTable(ctx, q, p, w); err == nil {
				hidden = t.Cell(org, service).Suppressed || t.OrgTotals[org].Suppressed
			}
		}
		if err != nil {
			return nil, err
		}
		if hidden {
			p.hideAll(d)
		}
	}
	return d, nil
}

// hiddenInList says whether service's count is hidden in the overview's
// list of services over w.
func (s source) hiddenInList(ctx context.Context, q store.Querier, p Privacy, w Window, service string) (bool, error) {
	services, err := s.serviceSums(ctx, q, w, "")
	if err != nil {
		return false, err
	}
	var total int64
	for _, r := range services {
		total += r.n
	}
	for _, it := range p.items(services, total, 0) {
		if it.Key == service {
			return it.Count.Suppressed, nil
		}
	}
	return false, nil
}

// hideAll hides a detail's total and every non-zero part of it.
func (p Privacy) hideAll(d *Detail) {
	d.Total = p.hidden()
	for _, list := range [][]Item{d.Services, d.Methods, d.Vendors, d.Needs} {
		for i := range list {
			if list[i].Count.Suppressed || list[i].Count.Int() > 0 {
				list[i].Count = p.hidden()
			}
		}
	}
	for i := range d.Daily {
		if d.Daily[i].Count.Suppressed || d.Daily[i].Count.Int() > 0 {
			d.Daily[i].Count = p.hidden()
		}
	}
}

// GetPairs counts reports per organisation and service over w, largest
// first; org "" means every organisation. The counts are the
// OrgServiceTable's, so they agree with every other page.
func GetPairs(ctx context.Context, q store.Querier, p Privacy, w Window, org string) ([]Pair, error) {
	t, err := GetOrgServiceTable(ctx, q, p, w)
	if err != nil {
		return nil, err
	}
	return t.Pairs(org), nil
}

// Report is what GET /api/v1/aggregates and `admin aggregates` give: the
// overview, and an organisation's detail when one is asked for.
type Report struct {
	K           int       `json:"k"`
	Rounded     bool      `json:"rounded"`
	GeneratedAt time.Time `json:"generated_at"`
	Overview    *Overview `json:"overview"`
	Org         *Detail   `json:"org,omitempty"`
}

// DefaultDays is the window the dashboard and the API use.
const DefaultDays = 30

// GetReport builds a Report for the last DefaultDays days ending at now.
// With org set, the overview is that organisation's and Org is its detail.
func GetReport(ctx context.Context, q store.Querier, p Privacy, now time.Time, org string) (*Report, error) {
	return rollups.report(ctx, q, p, now, org)
}

func (s source) report(ctx context.Context, q store.Querier, p Privacy, now time.Time, org string) (*Report, error) {
	w := LastDays(now, DefaultDays)
	r := &Report{K: int(p.k()), Rounded: p.Round, GeneratedAt: now.UTC().Truncate(time.Second)}
	var err error
	if r.Overview, err = s.overview(ctx, q, p, w, org); err != nil {
		return nil, err
	}
	if org != "" {
		if r.Org, err = s.org(ctx, q, p, w, org); err != nil {
			return nil, err
		}
		// The organisation's overview is its row of the org × service
		// table seen another way: hidden there, hidden here.
		if r.Org.Total.Suppressed {
			o := r.Overview
			o.BlocksThisWeek, o.Total = p.hidden(), p.hidden()
			for _, list := range [][]Item{o.TopServices, o.Needs} {
				for i := range list {
					if list[i].Count.Suppressed || list[i].Count.Int() > 0 {
						list[i].Count = p.hidden()
					}
				}
			}
			for i := range o.Trend {
				if o.Trend[i].Count.Suppressed || o.Trend[i].Count.Int() > 0 {
					o.Trend[i].Count = p.hidden()
				}
			}
		}
	}
	return r, nil
}
