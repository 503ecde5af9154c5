package aggregates_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// rollupsMatch checks that each rollup holds exactly the sums of the fine
// counters it is rolled up from, row for row.
func rollupsMatch(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct{ name, rollup, fine string }{
		{"pairs", `SELECT day, org, service, n FROM report_pairs ORDER BY day, org, service`,
			`SELECT day, org, service, SUM(n) FROM report_counts GROUP BY day, org, service ORDER BY day, org, service`},
		{"needs", `SELECT day, org, need, n FROM report_needs ORDER BY day, org, need`,
			`SELECT day, org, need, SUM(n) FROM report_counts GROUP BY day, org, need ORDER BY day, org, need`},
	} {
		read := func(q string) []string {
			rows, err := db.QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var a, b, c string
				var n int64
				if err := rows.Scan(&a, &b, &c, &n); err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%s %s %s %d", a, b, c, n))
			}
			return out
		}
		got, want := read(c.rollup), read(c.fine)
		if len(want) == 0 {
			t.Fatalf("%s: no counters to compare", c.name)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s rollup differs from the counters:\n got %v\nwant %v", c.name, got, want)
		}
	}
	spansMatch(t, db)
}

// spansMatch checks the span rollup against runs summed here, in Go, from
// the fine counters: each counter of day d counts in the run of each width
// w that starts w-aligned days after 1970-01-01 at or before d.
func spansMatch(t *testing.T, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT day, org, service, n FROM report_counts`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	epoch := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	for rows.Next() {
		var day, org, svc string
		var n int64
		if err := rows.Scan(&day, &org, &svc, &n); err != nil {
			t.Fatal(err)
		}
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			t.Fatal(err)
		}
		dn := int(d.Sub(epoch).Hours() / 24)
		for _, w := range aggregates.SpanWidths {
			start := epoch.AddDate(0, 0, dn-dn%w).Format(time.DateOnly)
			want[fmt.Sprintf("%d %s %s %s", w, start, org, svc)] += n
		}
	}
	rows.Close()
	got := map[string]int64{}
	rows, err = db.QueryContext(ctx, `SELECT width, start, org, service, n FROM report_pair_spans`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var w int
		var start, org, svc string
		var n int64
		if err := rows.Scan(&w, &start, &org, &svc, &n); err != nil {
			t.Fatal(err)
		}
		got[fmt.Sprintf("%d %s %s %s", w, start, org, svc)] = n
	}
	if len(want) == 0 || !maps.Equal(got, want) {
		t.Errorf("span rollup differs from the counters:\n got %v\nwant %v", got, want)
	}
}

// The rollups the cross-organisation pages read always agree with the fine
// counters: kept by Increment and IncrementAll, built by the
// migrations from counters (and day rollups) written before them, and
// rebuilt on demand.
func TestRollupsAgreeWithCounters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Counters written under the schema before the rollups existed.
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations[:3]); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 7))
		pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
		put := func(n int) {
			for range n {
				k := key(pick("2026-10-10", "2026-11-10", "2026-11-11", "2026-11-20", "2026-11-21", "2026-11-22"), pick("north", "south", "east"),
					pick("zoom", "docs", "miro"), pick("dns-nxdomain", "tcp-reset"), pick("", "zscaler"), pick("meeting", "other"))
				if _, err := db.ExecContext(ctx, `INSERT INTO report_counts (day, org, service, method, vendor, need, n) VALUES (?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (day, org, service, method, vendor, need) DO UPDATE SET n = report_counts.n + excluded.n`,
					k.Day, k.Org, k.Service, k.Method, k.Vendor, k.Need, int64(1+rng.IntN(4))); err != nil {
					t.Fatal(err)
				}
			}
		}
		put(200)
		// A database at step 4 (day rollups, no span rollup), brought up.
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations[:4]); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
			t.Fatal(err)
		}
		rollupsMatch(t, db)
		// Counted from now on through Increment.
		for range 300 {
			k := key(pick("2026-11-09", "2026-11-11", "2026-11-21", "2026-11-22", "2026-11-23"), pick("north", "west"),
				pick("zoom", "slack"), pick("tls-reset", "tcp-reset"), pick("", "fortinet"), pick("meeting", "guidance"))
			if err := aggregates.Increment(ctx, db, k, int64(1+rng.IntN(3))); err != nil {
				t.Fatal(err)
			}
		}
		rollupsMatch(t, db)
		// A group's counters at once, as the report intake adds them.
		for range 5 {
			group := map[aggregates.Key]int64{}
			for range 40 {
				group[key(pick("2026-11-09", "2026-11-22", "2026-11-23"), pick("north", "east"), pick("zoom", "miro"),
					pick("tls-reset", "dns-nxdomain"), pick("", "zscaler"), pick("meeting", "other"))] += int64(1 + rng.IntN(3))
			}
			if err := aggregates.IncrementAll(ctx, db, group); err != nil {
				t.Fatal(err)
			}
		}
		rollupsMatch(t, db)
		// A bulk load straight into the counters, then a rebuild.
		put(100)
		if err := aggregates.RebuildRollups(ctx, db); err != nil {
			t.Fatal(err)
		}
		rollupsMatch(t, db)
	})
}

// TestIncrementAllManyCounters: one call with more counters than one
// statement's parameters allow on either database (admin seed-demo adds a
// month of counters at once) stores every one, and the rollups agree: on
// SQLite in chunks, on PostgreSQL as arrays in one statement.
func TestIncrementAllManyCounters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
			t.Fatal(err)
		}
		counts := map[aggregates.Key]int64{}
		var want int64
		for i := range 12000 { // 12,000 distinct counters × 7 parameters: over both limits
			k := key(time.Date(2026, 11, 1+i%30, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), fmt.Sprintf("org-%d", i),
				fmt.Sprintf("svc-%d", i%7), "dns-nxdomain", "", "meeting")
			counts[k] += int64(1 + i%3)
			want += int64(1 + i%3)
		}
		err := db.InTx(ctx, func(tx *store.Tx) error { return aggregates.IncrementAll(ctx, tx, counts) })
		if err != nil {
			t.Fatal(err)
		}
		var rows, total int64
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*), SUM(n) FROM report_counts`).Scan(&rows, &total); err != nil {
			t.Fatal(err)
		}
		if len(counts) != 12000 || rows != int64(len(counts)) || total != want {
			t.Fatalf("stored %d counters totalling %d, want %d totalling %d", rows, total, len(counts), want)
		}
		rollupsMatch(t, db)
	})
}

// TestIncrementAllLockOrder: on PostgreSQL, IncrementAll's one statement
// takes the counter rows table by table in the order the SQLite path (and
// every hub before it) writes them: report_counts, report_pairs,
// report_needs, then the spans. PostgreSQL documents no order for a
// statement's data-modifying WITH queries, so this pins the one it has: a
// hub whose statement took the rows in another order would deadlock with
// a chunked call (admin seed-demo) and with hubs of the previous release.
// A transaction holds the report_needs row; IncrementAll, blocked on it,
// must by then hold the report_counts and report_pairs rows and not yet
// any span.
func TestIncrementAllLockOrder(t *testing.T) {
	db := storetest.Postgres(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		t.Fatal(err)
	}
	k := key("2026-11-03", "org-a", "zoom", "dns-nxdomain", "", "meeting")
	inc := func() error {
		return db.InTx(ctx, func(tx *store.Tx) error {
			return aggregates.IncrementAll(ctx, tx, map[aggregates.Key]int64{k: 1})
		})
	}
	if err := inc(); err != nil {
		t.Fatal(err)
	}
	probes := map[string]string{
		"report_counts":     `SELECT 1 FROM report_counts WHERE day = $1 AND org = $2 FOR UPDATE NOWAIT`,
		"report_pairs":      `SELECT 1 FROM report_pairs WHERE day = $1 AND org = $2 FOR UPDATE NOWAIT`,
		"report_needs":      `SELECT 1 FROM report_needs WHERE day = $1 AND org = $2 FOR UPDATE NOWAIT`,
		"report_pair_spans": `SELECT 1 FROM report_pair_spans WHERE $1 <> '' AND org = $2 FOR UPDATE NOWAIT`,
	}
	// locked says whether another transaction holds a row of table.
	locked := func(table string) bool {
		tx, err := db.SQL().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		rows, err := tx.QueryContext(ctx, probes[table], k.Day, k.Org)
		if err == nil {
			rows.Close()
		}
		return err != nil
	}

	holder, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, probes["report_needs"], k.Day, k.Org); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- inc() }()

	deadline := time.Now().Add(10 * time.Second)
	for !locked("report_counts") {
		if time.Now().After(deadline) {
			t.Fatal("IncrementAll, blocked on a report_needs row, never took its report_counts row: report_counts is no longer first")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // as far as it can go
	if !locked("report_pairs") {
		t.Error("blocked on report_needs, IncrementAll holds no report_pairs row: report_pairs no longer comes before report_needs")
	}
	if locked("report_pair_spans") {
		t.Error("blocked on report_needs, IncrementAll already holds a span: the spans no longer come last")
	}
	select {
	case err := <-done:
		t.Fatalf("IncrementAll finished while a report_needs row was held: %v", err)
	default:
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT n FROM report_needs WHERE day = ? AND org = ?`, k.Day, k.Org).Scan(&n); err != nil || n != 2 {
		t.Fatalf("report_needs n = %d (%v), want 2", n, err)
	}
	rollupsMatch(t, db)
}
