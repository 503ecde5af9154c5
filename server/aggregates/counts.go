// Package aggregates keeps the report counters the dashboard and
// GET /api/v1/aggregates read, and applies k-anonymity to everything it
// hands out. Counters are rolled up per day, organisation, service, method,
// vendor and need as reports arrive, so dashboard queries never scan raw
// reports.
package aggregates

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/detour-project/detour/server/store"
)

// Migrations are the aggregates domain's tables.
var Migrations = []store.Step{{
	Version: 1,
	SQL: `CREATE TABLE report_counts (
		day     TEXT NOT NULL,          -- YYYY-MM-DD (UTC)
		org     TEXT NOT NULL,
		service TEXT NOT NULL,
		method  TEXT NOT NULL,
		vendor  TEXT NOT NULL DEFAULT '', -- '' when no vendor was named
		need    TEXT NOT NULL,
		n       BIGINT NOT NULL,
		PRIMARY KEY (day, org, service, method, vendor, need)
	);
	CREATE INDEX report_counts_service_day ON report_counts (service, day);
	CREATE INDEX report_counts_org_day ON report_counts (org, day);`,
}, {
	// The overview reads every row of its window: a covering index lets it
	// do so without visiting the table (measured by BenchmarkDashboardQueries).
	Version: 2,
	SQL:     `CREATE INDEX report_counts_day_cover ON report_counts (day, service, need, n)`,
}, {
	// The review queue and the organisations page sum per organisation and
	// service over 90 days: covered likewise.
	Version: 3,
	SQL:     `CREATE INDEX report_counts_day_org_cover ON report_counts (day, org, service, n)`,
}, {
	// Two rollups, kept in the same transaction as report_counts, so the
	// pages that sum across every organisation (the overview, the review
	// queue, the organisations list, a service's place in the list) read
	// one row per day, organisation and service (or need) instead of one
	// per method, vendor and need as well: at 10 million reports a 30-day
	// window is ~260,000 counter rows but ~63,000 pair rows. On SQLite the
	// rollups are WITHOUT ROWID (stored in key order, so a day range is one
	// sequential read with n beside the key); on PostgreSQL their keys
	// INCLUDE n, for index-only scans. The detail pages of one service or
	// one organisation still read the fine table, through indexes that
	// cover their queries; the day-first indexes the rollups replace are
	// dropped. Existing counters are rolled up here.
	Version:  4,
	SQLite:   rollupSQL(" WITHOUT ROWID", ""),
	Postgres: rollupSQL("", " INCLUDE (n)"),
}, {
	// The span rollup (spans.go), built from the day rollup already held,
	// so the organisation × service table of a window reads runs of days
	// instead of every day (measured by BenchmarkDashboardQueries).
	Version:  5,
	SQLite:   spansSQL(store.SQLite, " WITHOUT ROWID", ""),
	Postgres: spansSQL(store.Postgres, "", " INCLUDE (n)"),
}}

// spansSQL is step 5 for one engine.
func spansSQL(d store.Dialect, tableOpts, keyOpts string) string {
	return `CREATE TABLE ` + spansTable + ` (
		width   INTEGER NOT NULL, -- days: 2, 4, 8, 16 or 32
		start   TEXT NOT NULL,    -- YYYY-MM-DD, a multiple of width days after 1970-01-01
		org     TEXT NOT NULL,
		service TEXT NOT NULL,
		n       BIGINT NOT NULL,
		PRIMARY KEY (width, start, org, service)` + keyOpts + `
	)` + tableOpts + `;
	` + spanFillSQL(d)
}

// rollupSQL is step 4 for one engine: table options and key options.
func rollupSQL(tableOpts, keyOpts string) string {
	return `CREATE TABLE report_pairs (
		day     TEXT NOT NULL,
		org     TEXT NOT NULL,
		service TEXT NOT NULL,
		n       BIGINT NOT NULL,
		PRIMARY KEY (day, org, service)` + keyOpts + `
	)` + tableOpts + `;
	CREATE TABLE report_needs (
		day  TEXT NOT NULL,
		org  TEXT NOT NULL,
		need TEXT NOT NULL,
		n    BIGINT NOT NULL,
		PRIMARY KEY (day, org, need)` + keyOpts + `
	)` + tableOpts + `;
	INSERT INTO report_pairs (day, org, service, n) SELECT day, org, service, SUM(n) FROM report_counts GROUP BY day, org, service;
	INSERT INTO report_needs (day, org, need, n) SELECT day, org, need, SUM(n) FROM report_counts GROUP BY day, org, need;
	CREATE INDEX report_pairs_org ON report_pairs (org, day, service, n);
	CREATE INDEX report_needs_org ON report_needs (org, day, need, n);
	CREATE INDEX report_counts_service_cover ON report_counts (service, day, org, method, vendor, need, n);
	CREATE INDEX report_counts_org_cover ON report_counts (org, day, service, method, vendor, need, n);
	DROP INDEX report_counts_service_day;
	DROP INDEX report_counts_org_day;
	DROP INDEX report_counts_day_cover;
	DROP INDEX report_counts_day_org_cover;`
}

// Key is one counter's coordinates.
type Key struct {
	Day     string // YYYY-MM-DD, UTC
	Org     string
	Service string
	Method  string
	Vendor  string
	Need    string
}

// Increment adds n to a counter and to its rollups. Call it inside the
// transaction that stores the report, so a report and its counts commit
// together or not at all.
func Increment(ctx context.Context, q store.Querier, k Key, n int64) error {
	return IncrementAll(ctx, q, map[Key]int64{k: n})
}

// IncrementAll adds many counters and their rollups: one statement a table,
// the rows of each in key order, the tables always in the same order. So
// transactions on one PostgreSQL database (several hubs committing groups
// of reports) take the rows they share in one global order and never
// deadlock, and a group of reports pays four statements, not four a report.
func IncrementAll(ctx context.Context, q store.Querier, counts map[Key]int64) error {
	if len(counts) == 0 {
		return nil
	}
	tables := []struct {
		name, cols, conflict string
		rows                 map[string]rollupRow
	}{
		{"report_counts", "day, org, service, method, vendor, need", "day, org, service, method, vendor, need", map[string]rollupRow{}},
		{"report_pairs", "day, org, service", "day, org, service", map[string]rollupRow{}},
		{"report_needs", "day, org, need", "day, org, need", map[string]rollupRow{}},
		{spansTable, "width, start, org, service", "width, start, org, service", map[string]rollupRow{}},
	}
	add := func(t map[string]rollupRow, n int64, key ...any) {
		id := fmt.Sprintf("%#v", key)
		r := t[id]
		r.key, r.n = key, r.n+n
		t[id] = r
	}
	for k, n := range counts {
		spans, err := spansOf(k.Day)
		if err != nil {
			return err
		}
		add(tables[0].rows, n, k.Day, k.Org, k.Service, k.Method, k.Vendor, k.Need)
		add(tables[1].rows, n, k.Day, k.Org, k.Service)
		add(tables[2].rows, n, k.Day, k.Org, k.Need)
		for _, s := range spans {
			add(tables[3].rows, n, s.width, s.start, k.Org, k.Service)
		}
	}
	for _, t := range tables {
		rows := make([]rollupRow, 0, len(t.rows))
		for _, r := range t.rows {
			rows = append(rows, r)
		}
		slices.SortFunc(rows, compareRows)
		one := "(" + strings.Repeat("?, ", len(rows[0].key)) + "?)"
		// In chunks, still in key order: a statement's parameters stay under
		// SQLite's and PostgreSQL's limits however many counters a caller
		// (admin seed-demo, say) adds at once.
		for chunk := range slices.Chunk(rows, maxRowsPerStatement) {
			var args []any
			for _, r := range chunk {
				args = append(append(args, r.key...), r.n)
			}
			sql := `INSERT INTO ` + t.name + ` (` + t.cols + `, n) VALUES ` + one + strings.Repeat(", "+one, len(chunk)-1) +
				` ON CONFLICT (` + t.conflict + `) DO UPDATE SET n = ` + t.name + `.n + excluded.n`
			if _, err := q.ExecContext(ctx, sql, args...); err != nil {
				return fmt.Errorf("aggregates: increment %s: %w", t.name, err)
			}
		}
	}
	return nil
}

// maxRowsPerStatement bounds one upsert: 7 parameters a row keeps it far
// below SQLite's 32,766 and PostgreSQL's 65,535.
const maxRowsPerStatement = 1000

// rollupRow is one row's key columns and the amount to add.
type rollupRow struct {
	key []any // strings, and a width (int) first in spans
	n   int64
}

// compareRows orders rows by their key columns, as the table's key does.
func compareRows(a, b rollupRow) int {
	for i := range a.key {
		var c int
		switch x := a.key[i].(type) {
		case int:
			c = cmp.Compare(x, b.key[i].(int))
		case string:
			c = cmp.Compare(x, b.key[i].(string))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// RebuildRollups recomputes the rollups from report_counts, for counters
// written straight into report_counts (a bulk load, a benchmark's data).
func RebuildRollups(ctx context.Context, q store.Querier) error {
	for _, sql := range []string{
		`DELETE FROM report_pairs`,
		`DELETE FROM report_needs`,
		`DELETE FROM ` + spansTable,
		`INSERT INTO report_pairs (day, org, service, n) SELECT day, org, service, SUM(n) FROM report_counts GROUP BY day, org, service`,
		`INSERT INTO report_needs (day, org, need, n) SELECT day, org, need, SUM(n) FROM report_counts GROUP BY day, org, need`,
		spanFillSQL(q.Dialect()),
	} {
		if _, err := q.ExecContext(ctx, sql); err != nil {
			return fmt.Errorf("aggregates: rebuild rollups: %w", err)
		}
	}
	return nil
}
