package reports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/server/store/storetest"
)

// benchBatch is the number of reports one benchmark op sends.
const benchBatch = 500

// BenchmarkReportAccept measures accepted reports per second through the
// hub's real HTTP handler (strict decoding, token verification, the
// report with its spent token and its counters committed with its group),
// beside a no-op handler on the same server that reads a body of the same
// size and answers 202, and a verify-only handler that decodes, checks and
// verifies the same bodies and stores nothing (the ceiling for any
// storage). One op is a batch of 500 reports, then the same 500 bodies to
// the no-op and to the verify-only handler, each from the same number of
// concurrent clients: 8, and 64 (a hub at load has many helpers sending at
// once). A fixed batch keeps b.N, and so the token minting, small; the
// tokens are minted with the timer stopped. Reported: reports/s,
// noop-req/s, their ratio, the verify-only handler's ratio, reports per
// committed group, and the p99 latency of reports and no-ops. On SQLite,
// and on PostgreSQL when DETOUR_BENCH_POSTGRES names a server (a fresh
// schema per run).
func BenchmarkReportAccept(b *testing.B) {
	for _, clients := range []int{8, 64} {
		b.Run(fmt.Sprintf("sqlite/%d-clients", clients), func(b *testing.B) { benchReportAccept(b, "", clients) })
	}
	if base := os.Getenv("DETOUR_BENCH_POSTGRES"); base != "" {
		for _, clients := range []int{8, 64} {
			b.Run(fmt.Sprintf("postgres/%d-clients", clients), func(b *testing.B) {
				b.Setenv("DETOUR_TEST_POSTGRES", base)
				benchReportAccept(b, storetest.PostgresDSN(b), clients)
			})
		}
	}
}

func benchReportAccept(b *testing.B, dsn string, workers int) {
	b.Setenv("DETOUR_TOKENS_PER_DAY", "100000000")
	h := reportstest.Start(b, dsn)
	ctx := context.Background()
	svc, err := h.OpenReports(ctx)
	if err != nil {
		b.Fatal(err)
	}
	h.Mux.HandleFunc("POST /api/v1/bench-noop", func(w http.ResponseWriter, r *http.Request) {
		// The same body read, the same headers and the same size of
		// answer as an accepted report's.
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		w.Write(noopAnswer)
	})
	h.Mux.HandleFunc("POST /api/v1/bench-verify-only", func(w http.ResponseWriter, r *http.Request) {
		if err := h.Reports.VerifyOnly(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusAccepted)
		w.Write(noopAnswer)
	})
	code, _, err := svc.CreateCode(ctx, "org-a")
	if err != nil {
		b.Fatal(err)
	}
	dev, err := reportstest.Enrol(http.DefaultClient, h.URL, code)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	before := count(b, h, "org-a", "google-docs")
	groups0, grouped0 := h.Reports.Groups()
	var lat, noopLat, verifyLat []time.Duration
	var busy, noopBusy, verifyBusy time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		bodies := mintBodies(b, h.URL, dev, benchBatch)
		b.StartTimer()
		stopProfile := profileReports(b)
		l, d := post(b, client, workers, h.URL+"/api/v1/reports", bodies)
		stopProfile()
		b.StopTimer()
		lat, busy = append(lat, l...), busy+d
		l, d = post(b, client, workers, h.URL+"/api/v1/bench-noop", bodies)
		noopLat, noopBusy = append(noopLat, l...), noopBusy+d
		l, d = post(b, client, workers, h.URL+"/api/v1/bench-verify-only", bodies)
		verifyLat, verifyBusy = append(verifyLat, l...), verifyBusy+d
		b.StartTimer()
	}
	b.StopTimer()
	perSec := float64(len(lat)) / busy.Seconds()
	noopPerSec := float64(len(noopLat)) / noopBusy.Seconds()
	b.ReportMetric(perSec, "reports/s")
	b.ReportMetric(noopPerSec, "noop-req/s")
	b.ReportMetric(perSec/noopPerSec, "ratio-vs-noop")
	b.ReportMetric(float64(len(verifyLat))/verifyBusy.Seconds()/noopPerSec, "verify-only-ratio-vs-noop")
	b.ReportMetric(p99ms(lat), "p99-ms")
	if groups, grouped := h.Reports.Groups(); groups > groups0 {
		b.ReportMetric(float64(grouped-grouped0)/float64(groups-groups0), "reports/group")
	}
	b.ReportMetric(p99ms(noopLat), "noop-p99-ms")
	if n := count(b, h, "org-a", "google-docs") - before; n != b.N*benchBatch {
		b.Fatalf("counted %d of %d reports", n, b.N*benchBatch)
	}
}

// profileReports starts a CPU profile of the report phase alone when
// DETOUR_BENCH_REPORTS_CPUPROFILE names a file (go test's -cpuprofile
// would be mostly the token minting done with the timer stopped). Each op
// overwrites the file, so it holds the last op's reports.
func profileReports(b *testing.B) (stop func()) {
	path := os.Getenv("DETOUR_BENCH_REPORTS_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

var noopAnswer = []byte(`{"id":"` + strings.Repeat("0", 64) + `","status":"accepted"}` + "\n")

func p99ms(lat []time.Duration) float64 {
	slices.Sort(lat)
	return float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds()) / 1000
}

// post sends every body to url from workers goroutines and returns each
// request's latency and the wall time.
func post(b testing.TB, client *http.Client, workers int, url string, bodies [][]byte) ([]time.Duration, time.Duration) {
	var next atomic.Int64
	lat := make([]time.Duration, len(bodies))
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("%s: status %d", url, resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start)
}

// mintBodies makes n report bodies, each with a fresh token, minting in
// batches of reportstest.MaxBatch on every core.
func mintBodies(b testing.TB, base string, dev *reportstest.Device, n int) [][]byte {
	bodies := make([][]byte, n)
	r := report("org-a")
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(reportstest.MaxBatch) - reportstest.MaxBatch)
				if lo >= n {
					return
				}
				toks, err := dev.Tokens(http.DefaultClient, base, min(reportstest.MaxBatch, n-lo))
				if err != nil {
					b.Error(err)
					return
				}
				for i, tok := range toks {
					bodies[lo+i], _ = json.Marshal(map[string]any{"report": r, "token": tok})
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return bodies
}
