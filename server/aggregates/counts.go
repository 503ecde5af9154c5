// Package aggregates keeps the report counters the dashboard and
// GET /api/v1/aggregates read, and applies k-anonymity to everything it
// hands out. Counters are rolled up per day, organisation, service, method,
// vendor and need as reports arrive, so dashboard queries never scan raw
// reports.
package aggregates

import (
	"context"
	"fmt"

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
}}

// Key is one counter's coordinates.
type Key struct {
	Day     string // YYYY-MM-DD, UTC
	Org     string
	Service string
	Method  string
	Vendor  string
	Need    string
}

// Increment adds n to a counter. Call it inside the transaction that stores
// the report, so a report and its count commit together or not at all.
func Increment(ctx context.Context, q store.Querier, k Key, n int64) error {
	_, err := q.ExecContext(ctx, `INSERT INTO report_counts (day, org, service, method, vendor, need, n)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (day, org, service, method, vendor, need) DO UPDATE SET n = report_counts.n + excluded.n`,
		k.Day, k.Org, k.Service, k.Method, k.Vendor, k.Need, n)
	if err != nil {
		return fmt.Errorf("aggregates: increment %s/%s: %w", k.Org, k.Service, err)
	}
	return nil
}
