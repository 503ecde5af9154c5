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

// IncrementAll adds many counters and their rollups: the rows of each
// table in key order, the tables always in the same order. So transactions
// on one PostgreSQL database (several hubs committing groups of reports)
// take the rows they share in one global order and never deadlock, and a
// group of reports pays for its counters once, not once a report.
//
// On SQLite that is one upsert a table. On PostgreSQL it is one statement
// for all four tables (oneStatement), since the counter rows are the
// cluster's hottest: every group of every hub adds to the same few (one a
// day, organisation and need), and a group holds them from its first upsert
// to its commit. As four statements, that was four round trips between the
// database and a busy hub while holding them: the cluster load test (7 hubs
// on 2 cores) found most database sessions waiting for those rows while
// their holder sat "idle in transaction" between statements, and after a
// SIGKILL the surviving hubs answered "503 busy" 4,800-12,400 times over
// 10-12 s; with the one statement, 1,000-1,900 times over 3-5 s.
func IncrementAll(ctx context.Context, q store.Querier, counts map[Key]int64) error {
	if len(counts) == 0 {
		return nil
	}
	tables := []*counterTable{
		{name: "report_counts", cols: "day, org, service, method, vendor, need"},
		{name: "report_pairs", cols: "day, org, service"},
		{name: "report_needs", cols: "day, org, need"},
		{name: spansTable, cols: "width, start, org, service"},
	}
	for _, t := range tables {
		t.rows = map[string]rollupRow{}
	}
	for k, n := range counts {
		spans, err := spansOf(k.Day)
		if err != nil {
			return err
		}
		tables[0].add(n, k.Day, k.Org, k.Service, k.Method, k.Vendor, k.Need)
		tables[1].add(n, k.Day, k.Org, k.Service)
		tables[2].add(n, k.Day, k.Org, k.Need)
		for _, s := range spans {
			tables[3].add(n, s.width, s.start, k.Org, k.Service)
		}
	}
	if q.Dialect() == store.Postgres {
		sql, args := oneStatement(tables)
		if _, err := q.ExecContext(ctx, sql, args...); err != nil {
			return fmt.Errorf("aggregates: increment counters: %w", err)
		}
		return nil
	}
	for _, t := range tables {
		for _, u := range t.upserts() {
			if _, err := q.ExecContext(ctx, u.sql, u.args...); err != nil {
				return fmt.Errorf("aggregates: increment %s: %w", t.name, err)
			}
		}
	}
	return nil
}

// oneStatement is PostgreSQL's single statement adding to every table: each
// table's rows as arrays (unnest keeps their order, and the text stays the
// same whatever the number of rows, so pgx prepares it once a connection),
// the first table as the main statement and the others as data-modifying
// WITH queries. It takes the rows in the same order as the upserts one by
// one: PostgreSQL runs the main statement first and then the WITH queries,
// last listed first (ExecPostprocessPlan walks es_auxmodifytables, which
// ExecInitModifyTable builds with lcons), so the others are listed in
// reverse. TestIncrementAllLockOrder checks that order on a real server.
func oneStatement(tables []*counterTable) (string, []any) {
	var sql strings.Builder
	var args []any
	sql.WriteString("WITH ")
	for i := len(tables) - 1; i >= 1; i-- {
		if i < len(tables)-1 {
			sql.WriteString(", ")
		}
		q, a := tables[i].unnestUpsert()
		fmt.Fprintf(&sql, "c%d AS (%s RETURNING 1)", i, q)
		args = append(args, a...)
	}
	q, a := tables[0].unnestUpsert()
	sql.WriteString(" " + q)
	return sql.String(), append(args, a...)
}

// counterTable gathers the rows IncrementAll adds to one table.
type counterTable struct {
	name, cols string // cols: the key columns, which are also the conflict target
	rows       map[string]rollupRow
}

func (t *counterTable) add(n int64, key ...any) {
	id := fmt.Sprintf("%#v", key)
	r := t.rows[id]
	r.key, r.n = key, r.n+n
	t.rows[id] = r
}

// onConflict ends every upsert into t: a row already there is added to.
func (t *counterTable) onConflict() string {
	return ` ON CONFLICT (` + t.cols + `) DO UPDATE SET n = ` + t.name + `.n + excluded.n`
}

// unnestUpsert is PostgreSQL's upsert of t's rows, in key order, one array
// a column: the same text whatever the number of rows.
func (t *counterTable) unnestUpsert() (string, []any) {
	rows := t.sorted()
	var args []any
	var casts []string
	for i, v := range rows[0].key {
		if _, isInt := v.(int); isInt { // the spans' width
			args = append(args, column(rows, func(r rollupRow) int64 { return int64(r.key[i].(int)) }))
			casts = append(casts, "?::int[]")
		} else {
			args = append(args, column(rows, func(r rollupRow) string { return r.key[i].(string) }))
			casts = append(casts, "?::text[]")
		}
	}
	args = append(args, column(rows, func(r rollupRow) int64 { return r.n }))
	return `INSERT INTO ` + t.name + ` (` + t.cols + `, n) SELECT * FROM unnest(` + strings.Join(casts, ", ") + `, ?::bigint[])` + t.onConflict(), args
}

// column is one value of each row, in order: an array parameter.
func column[T any](rows []rollupRow, value func(rollupRow) T) []T {
	out := make([]T, len(rows))
	for j, r := range rows {
		out[j] = value(r)
	}
	return out
}

// upsert is one SQLite statement adding to one table's counters.
type upsert struct {
	sql  string
	args []any
}

// upserts are SQLite's statements adding t's rows, in key order: in chunks,
// so a statement's parameters stay under SQLite's limit however many
// counters a caller (admin seed-demo, say) adds at once.
func (t *counterTable) upserts() []upsert {
	rows := t.sorted()
	one := "(" + strings.Repeat("?, ", len(rows[0].key)) + "?)"
	var out []upsert
	for chunk := range slices.Chunk(rows, maxRowsPerStatement) {
		args := make([]any, 0, len(chunk)*(len(chunk[0].key)+1))
		for _, r := range chunk {
			args = append(append(args, r.key...), r.n)
		}
		out = append(out, upsert{args: args,
			sql: `INSERT INTO ` + t.name + ` (` + t.cols + `, n) VALUES ` + one + strings.Repeat(", "+one, len(chunk)-1) + t.onConflict()})
	}
	return out
}

// sorted is t's rows in key order.
func (t *counterTable) sorted() []rollupRow {
	rows := make([]rollupRow, 0, len(t.rows))
	for _, r := range t.rows {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, compareRows)
	return rows
}

// maxRowsPerStatement bounds one SQLite upsert: 7 parameters a row keeps it
// far below SQLite's 32,766.
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
