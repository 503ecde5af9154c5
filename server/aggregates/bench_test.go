package aggregates_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/method"
)

// benchEnd is the last day of the generated year, and "now" for queries.
var benchEnd = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const (
	benchOrgs     = 40
	benchServices = 60
	benchDays     = 365
)

// benchDB opens (generating on first use) an SQLite database holding the
// report_counts rows that `reports` reports would produce over a year: 40
// organisations and 60 services with Zipf-like popularity, each
// organisation's filter blocking with one main and one secondary method
// (10 in all) and naming one of 6 vendors (or none), 6 needs weighted by
// service, and quieter weekends. The file is cached in os.TempDir() by size.
func benchDB(b *testing.B, reports int) (*store.DB, int64) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("detour-bench-report-counts-%d-v1.db", reports))
	if _, err := os.Stat(path); err != nil {
		tmp := path + ".tmp"
		os.Remove(tmp)
		os.Remove(tmp + "-wal")
		os.Remove(tmp + "-shm")
		start := time.Now()
		db, err := store.Open(ctx, "sqlite:"+tmp)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
			b.Fatal(err)
		}
		rows, total := generate(ctx, b, db, reports)
		if err := aggregates.RebuildRollups(ctx, db); err != nil {
			b.Fatal(err)
		}
		db.ExecContext(ctx, "ANALYZE")
		db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		db.Close()
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
		b.Logf("generated %d report_counts rows holding %d reports in %s (cached at %s)", rows, total, time.Since(start).Round(time.Second), path)
	}
	db, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var rows, total int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(n) FROM report_counts").Scan(&rows, &total); err != nil {
		b.Fatal(err)
	}
	// Databases are shared between runs: bring an older file's schema up.
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("    dataset: %d reports as %d report_counts rows (%d orgs, %d services, %d methods, %d needs, %d days)\n",
		total, rows, benchOrgs, benchServices, len(method.Blocks), len(method.Needs), benchDays)
	return db, rows
}

func generate(ctx context.Context, b *testing.B, db *store.DB, reports int) (rows, total int64) {
	rng := rand.New(rand.NewPCG(1, uint64(reports)))
	ow := make([]float64, benchOrgs)
	sw := make([]float64, benchServices)
	var osum, ssum, dsum float64
	for i := range ow {
		ow[i] = 1 / math.Pow(float64(i+1), 0.8)
		osum += ow[i]
	}
	for i := range sw {
		sw[i] = 1 / math.Pow(float64(i+1), 1.0)
		ssum += sw[i]
	}
	dw := make([]float64, benchDays)
	dayNames := make([]string, benchDays)
	for d := range dw {
		day := benchEnd.AddDate(0, 0, -(benchDays - 1 - d))
		dayNames[d] = day.Format(time.DateOnly)
		dw[d] = 1
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			dw[d] = 0.2
		}
		dsum += dw[d]
	}
	vendors := []string{"", "fortinet", "cisco-umbrella", "zscaler", "smoothwall", "palo-alto", "cloudflare"}

	sqlTx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := sqlTx.PrepareContext(ctx, `INSERT INTO report_counts (day, org, service, method, vendor, need, n) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	needW := make([]float64, len(method.Needs))
	for d := 0; d < benchDays; d++ {
		for o := 0; o < benchOrgs; o++ {
			org := fmt.Sprintf("org-%02d", o)
			methods := []string{method.Blocks[o%len(method.Blocks)], method.Blocks[(o+3)%len(method.Blocks)]}
			mshare := []float64{0.75, 0.25}
			vendor := vendors[o%len(vendors)]
			for s := 0; s < benchServices; s++ {
				lambda := float64(reports) * ow[o] / osum * sw[s] / ssum * dw[d] / dsum
				for i := range needW {
					needW[i] = 0.05
				}
				needW[s%len(needW)] = 0.6
				needW[(s+1)%len(needW)] = 0.2
				for mi, m := range methods {
					for ni, need := range method.Needs {
						x := lambda * mshare[mi] * needW[ni]
						n := int64(x)
						if rng.Float64() < x-float64(n) {
							n++
						}
						if n == 0 {
							continue
						}
						if _, err := stmt.ExecContext(ctx, dayNames[d], org, fmt.Sprintf("svc-%02d", s), m, vendor, need, n); err != nil {
							b.Fatal(err)
						}
						rows++
						total += n
					}
				}
			}
		}
	}
	stmt.Close()
	if err := sqlTx.Commit(); err != nil {
		b.Fatal(err)
	}
	return rows, total
}

// BenchmarkDashboardQueries reports the p95 time of the queries of every
// dashboard page that reads reports, over the 30 days they show, at 1
// million and 10 million reports: the overview, a service, the review queue
// (and its export, the same query), a review item (one service at one
// organisation), the organisations list, an organisation, and
// GET /api/v1/aggregates for one organisation. The common-ground page reads
// the whitelist alone, no reports.
func BenchmarkDashboardQueries(b *testing.B) {
	parent := b
	ctx := context.Background()
	p := aggregates.Privacy{K: 5}
	w := aggregates.LastDays(benchEnd, aggregates.DefaultDays)
	engines := []string{"sqlite"}
	if os.Getenv("DETOUR_BENCH_POSTGRES") != "" {
		engines = append(engines, "postgres")
	}
	for _, engine := range engines {
		for _, size := range []int{1_000_000, 10_000_000} {
			label := fmt.Sprintf("%s/reports=%dM", engine, size/1_000_000)
			var db *store.DB
			pages := []struct {
				name string
				run  func(i int) error
			}{
				{"overview", func(i int) error { _, err := aggregates.GetOverview(ctx, db, p, w, ""); return err }},
				{"service", func(i int) error {
					_, err := aggregates.GetService(ctx, db, p, w, fmt.Sprintf("svc-%02d", i%benchServices), "")
					return err
				}},
				{"review-queue", func(i int) error {
					_, err := aggregates.GetPairs(ctx, db, p, w, "")
					return err
				}},
				{"review-item", func(i int) error {
					_, err := aggregates.GetService(ctx, db, p, w, fmt.Sprintf("svc-%02d", i%benchServices), fmt.Sprintf("org-%02d", i%benchOrgs))
					return err
				}},
				{"orgs", func(i int) error {
					_, err := aggregates.GetOrgServiceTable(ctx, db, p, w)
					return err
				}},
				{"org", func(i int) error {
					_, err := aggregates.GetOrg(ctx, db, p, w, fmt.Sprintf("org-%02d", i%benchOrgs))
					return err
				}},
				{"api-org", func(i int) error {
					_, err := aggregates.GetReport(ctx, db, p, benchEnd, fmt.Sprintf("org-%02d", i%benchOrgs))
					return err
				}},
			}
			for _, pg := range pages {
				b.Run(label+"/"+pg.name, func(b *testing.B) {
					if db == nil {
						if db, _ = benchDB(parent, size); engine == "postgres" {
							db = benchPostgres(parent, db, size)
						}
					}
					var times []time.Duration
					for i := 0; b.Loop(); i++ {
						t0 := time.Now()
						if err := pg.run(i); err != nil {
							b.Fatal(err)
						}
						times = append(times, time.Since(t0))
					}
					sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
					p95 := times[(len(times)*95+99)/100-1]
					b.ReportMetric(float64(p95.Microseconds())/1000, "p95-ms")
					b.ReportMetric(float64(len(times)), "samples")
				})
			}
		}
	}
}

// benchPostgres copies the SQLite dataset into a PostgreSQL database of its
// own (detour_bench_N on the server DETOUR_BENCH_POSTGRES names), once: a
// marker table records which dataset it holds. Then VACUUM ANALYZE, so the
// planner has statistics and index-only scans see an up-to-date
// visibility map, as a hub's autovacuum would give it.
func benchPostgres(b *testing.B, src *store.DB, reports int) *store.DB {
	b.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, os.Getenv("DETOUR_BENCH_POSTGRES"))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("detour_bench_%d", reports)
	var exists bool
	admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)`, name).Scan(&exists)
	if !exists {
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			b.Fatal(err)
		}
	}
	u, err := url.Parse(os.Getenv("DETOUR_BENCH_POSTGRES"))
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	db, err := store.Open(ctx, u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		b.Fatal(err)
	}
	var have int64
	db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM report_counts`).Scan(&have)
	var want int64
	src.QueryRowContext(ctx, `SELECT SUM(n) FROM report_counts`).Scan(&want)
	if have == want {
		return db
	}
	start := time.Now()
	if _, err := db.ExecContext(ctx, `DELETE FROM report_counts`); err != nil {
		b.Fatal(err)
	}
	rows, err := src.QueryContext(ctx, `SELECT day, org, service, method, vendor, need, n FROM report_counts`)
	if err != nil {
		b.Fatal(err)
	}
	const per = 1000
	var args []any
	flush := func() {
		if len(args) == 0 {
			return
		}
		q := "INSERT INTO report_counts (day, org, service, method, vendor, need, n) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", len(args)/7), ", ")
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
		args = args[:0]
	}
	for rows.Next() {
		var day, org, svc, m, v, need string
		var n int64
		if err := rows.Scan(&day, &org, &svc, &m, &v, &need, &n); err != nil {
			b.Fatal(err)
		}
		args = append(args, day, org, svc, m, v, need, n)
		if len(args) == per*7 {
			flush()
		}
	}
	rows.Close()
	flush()
	if err := aggregates.RebuildRollups(ctx, db); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("copied %d reports into PostgreSQL %s in %s", want, name, time.Since(start).Round(time.Second))
	return db
}
