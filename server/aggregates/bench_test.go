package aggregates_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
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

// BenchmarkDashboardQueries reports the p95 time of the overview's and the
// service page's queries over 30 days at 1 million and 10 million reports,
// and of the organisation page's and the review queue's (same window).
func BenchmarkDashboardQueries(b *testing.B) {
	parent := b
	ctx := context.Background()
	p := aggregates.Privacy{K: 5}
	w := aggregates.LastDays(benchEnd, aggregates.DefaultDays)
	for _, size := range []int{1_000_000, 10_000_000} {
		label := fmt.Sprintf("reports=%dM", size/1_000_000)
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
			{"org", func(i int) error {
				_, err := aggregates.GetOrg(ctx, db, p, w, fmt.Sprintf("org-%02d", i%benchOrgs))
				return err
			}},
		}
		for _, pg := range pages {
			b.Run(label+"/"+pg.name, func(b *testing.B) {
				if db == nil {
					db, _ = benchDB(parent, size)
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
