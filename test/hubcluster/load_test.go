//go:build linux

package hubcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store/storetest"
)

// Issue 15's load test, item 4: hubs on one PostgreSQL database, WebSocket
// helpers spread across them, reports at 1,000/s for 60 s with real
// tokens, one hub killed with SIGKILL along the way, then a policy change
// made with `admin` that must reach every helper. It runs from `make
// bench` only (benchmarks never run in `make test`).
//
// Sized from the machine: a process may hold RLIMIT_NOFILE descriptors (its
// hard limit, which an unprivileged process cannot raise), so
//   - helpers live in fleet child processes of at most nofile-fleetReserve
//     connections each, dialling from several 127.0.0.x addresses;
//   - a hub holds at most nofile-hubReserve helpers, and after the kill the
//     survivors must hold the killed hub's share too.
//
// Two scenarios: 3 hubs at the largest helper count their survivors can
// hold (100,000 where the limit allows), and, where that is below
// 100,000, as many hubs as 100,000 helpers need with one hub down.
const (
	issueHelpers = 100000
	issueRate    = 1000 // reports a second
	issueSeconds = 60
	// hubReserve: descriptors a hub keeps beside its helpers (report
	// connections, the database pool, the listener, reconnection churn).
	hubReserve = 1000
	// fleetReserve: the same for a fleet (its binary, pipes, dials in
	// flight).
	fleetReserve = 2000
	// Events, as fractions of the report run: the kill at 15 s of 60, the
	// policy change at 35 s (once every helper is back).
	killFrac, changeFrac = 0.25, 35.0 / 60
)

// rssKiB reads a process's resident memory.
func rssKiB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return 0
}

// noFile is the descriptor limit a process started from here may reach:
// the hard limit (Go programs raise their soft limit to it).
func noFile() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max > 1<<30 {
		return 1 << 30
	}
	return int(lim.Max)
}

// loadPlan is one scenario's size.
type loadPlan struct {
	hubs, helpers, fleets int
	why                   string
}

// plans sizes the scenarios for a descriptor limit.
func plans(nofile int) []loadPlan {
	perHub := nofile - hubReserve
	perFleet := nofile - fleetReserve
	fleets := func(n int) int { return (n + perFleet - 1) / perFleet }
	n3 := min(issueHelpers, 2*perHub)
	three := loadPlan{hubs: 3, helpers: n3, fleets: fleets(n3)}
	if n3 == issueHelpers {
		three.why = fmt.Sprintf("RLIMIT_NOFILE %d: 2 surviving hubs hold %d each", nofile, (n3+1)/2)
		return []loadPlan{three}
	}
	three.why = fmt.Sprintf("RLIMIT_NOFILE %d (hard): a hub holds at most %d helpers, so 3 hubs with one killed hold %d, not %d", nofile, perHub, n3, issueHelpers)
	h := 3
	for (issueHelpers+h-2)/(h-1) > perHub {
		h++
	}
	all := loadPlan{hubs: h, helpers: issueHelpers, fleets: fleets(issueHelpers),
		why: fmt.Sprintf("RLIMIT_NOFILE %d (hard): %d hubs hold %d each, %d each once one is killed", nofile, h, (issueHelpers+h-1)/h, (issueHelpers+h-2)/(h-1))}
	return []loadPlan{three, all}
}

func TestPlans(t *testing.T) {
	for _, tc := range []struct {
		nofile int
		want   []loadPlan
	}{
		{20000, []loadPlan{{hubs: 3, helpers: 38000, fleets: 3}, {hubs: 7, helpers: 100000, fleets: 6}}},
		{1 << 20, []loadPlan{{hubs: 3, helpers: 100000, fleets: 1}}},
		{60000, []loadPlan{{hubs: 3, helpers: 100000, fleets: 2}}},
		{40000, []loadPlan{{hubs: 3, helpers: 78000, fleets: 3}, {hubs: 4, helpers: 100000, fleets: 3}}},
	} {
		got := plans(tc.nofile)
		for i := range got {
			got[i].why = ""
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("plans(%d) = %+v, want %+v", tc.nofile, got, tc.want)
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkClusterLoad runs each scenario once. DETOUR_BENCH_CLUSTER_CLIENTS
// caps the helpers and DETOUR_BENCH_CLUSTER_SECONDS shortens the report run
// (for trying it out; the defaults are the issue's figures).
func BenchmarkClusterLoad(b *testing.B) {
	if os.Getenv("DETOUR_TEST_POSTGRES") == "" && os.Getenv("DETOUR_BENCH_POSTGRES") != "" {
		b.Setenv("DETOUR_TEST_POSTGRES", os.Getenv("DETOUR_BENCH_POSTGRES"))
	}
	if os.Getenv("DETOUR_TEST_POSTGRES") == "" {
		// Said on stdout: go test shows a skipped benchmark only with -v.
		fmt.Println("BenchmarkClusterLoad: skipped, it needs PostgreSQL (make bench starts one; or set DETOUR_BENCH_POSTGRES to a DSN)")
		b.Skip("no PostgreSQL")
	}
	nofile := noFile()
	for _, p := range plans(nofile) {
		if n := envInt("DETOUR_BENCH_CLUSTER_CLIENTS", p.helpers); n < p.helpers {
			p.helpers, p.why = n, p.why+fmt.Sprintf("; %d by DETOUR_BENCH_CLUSTER_CLIENTS", n)
		}
		b.Run(fmt.Sprintf("hubs=%d/helpers=%d", p.hubs, p.helpers), func(b *testing.B) {
			b.Logf("%d hubs, %d helpers in %d fleet processes: %s", p.hubs, p.helpers, p.fleets, p.why)
			for range b.N {
				clusterLoad(b, p, envInt("DETOUR_BENCH_CLUSTER_SECONDS", issueSeconds))
			}
		})
	}
}

func quantile(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func clusterLoad(b *testing.B, p loadPlan, seconds int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dsn := storetest.PostgresDSN(b)
	mk := filepath.Join(b.TempDir(), "master.key")
	os.WriteFile(mk, masterkey.Generate(), 0o600)
	// Devices mint all their tokens at once, far past the daily quota.
	b.Setenv("DETOUR_TOKENS_PER_DAY", "100000000")
	var hubs []*hubProc
	for range p.hubs {
		hubs = append(hubs, launch(b, 0, "--data", b.TempDir(), "--db", dsn, "--master-key-file", mk,
			"--max-ws-clients", "0", "--public-url", "http://hub.load.test"))
	}
	var bases, pushURLs []string
	for _, h := range hubs {
		h.wait(b)
		bases = append(bases, h.URL)
		pushURLs = append(pushURLs, "ws"+strings.TrimPrefix(h.URL, "http")+"/api/v1/whitelist/ws")
	}
	data := b.TempDir()
	adm := func(args ...string) string {
		return admin(b, append([]string{"--data", data, "--db", dsn, "--master-key-file", mk}, args...)...)
	}
	adm("org", "add", "load", "--name", "Load test")
	var code struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal([]byte(adm("enrol-code", "create", "load", "--devices", "16", "--json")), &code); err != nil {
		b.Fatal(err)
	}
	_, trusted := hubKeys(b, bases[0])
	doc := signedDoc(b, bases[0], trusted)
	shapes := reportShapes(b, doc, "load")

	b.StopTimer()
	mintStart := time.Now()
	tokens := mintTokens(b, bases, code.Code, issueRate*seconds)
	mint := time.Since(mintStart)
	b.Logf("minted %d tokens in %v (%.0f/s) through POST /api/v1/tokens", len(tokens), mint.Round(time.Millisecond), float64(len(tokens))/mint.Seconds())

	var rss0 float64
	for _, h := range hubs {
		rss0 += rssKiB(h.cmd.Process.Pid)
	}
	var keys [][]byte
	for _, k := range trusted {
		keys = append(keys, k)
	}
	var fleets []*fleetProc
	per := (p.helpers + p.fleets - 1) / p.fleets
	for f := range p.fleets {
		n := min(per, p.helpers-f*per)
		// Two source addresses a fleet, none shared: every (source,
		// hub) pair has the whole ephemeral port range to itself.
		local := []string{fmt.Sprintf("127.0.%d.%d", 1+f/100, 2+2*(f%100)), fmt.Sprintf("127.0.%d.%d", 1+f/100, 3+2*(f%100))}
		fleets = append(fleets, startFleet(b, fleetConfig{URLs: pushURLs, N: n, First: f * per, Local: local, Keys: keys}))
	}
	connected := func() int64 {
		var n int64
		for _, f := range fleets {
			n += f.connected.Load()
		}
		return n
	}
	waitFor := func(what string, within time.Duration, done func() bool) time.Duration {
		start := time.Now()
		for !done() {
			if time.Since(start) > within || ctx.Err() != nil {
				b.Fatalf("%s: not done within %v (%d of %d helpers connected)", what, within, connected(), p.helpers)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	ramp := waitFor("connecting the helpers", 5*time.Minute, func() bool { return connected() == int64(p.helpers) })
	b.Logf("%d helpers connected in %v", p.helpers, ramp.Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	var rss1, fleetRSS float64
	for _, h := range hubs {
		rss1 += rssKiB(h.cmd.Process.Pid)
	}
	for _, f := range fleets {
		fleetRSS += rssKiB(f.cmd.Process.Pid)
	}

	// The report run, and meanwhile the kill and the change.
	in := newIntake(bases)
	runCtx, runCancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+90*time.Second)
	defer runCancel()
	ran := make(chan struct{})
	b.StartTimer()
	runStart := time.Now()
	go func() { defer close(ran); in.run(runCtx, shapes, tokens, issueRate) }()
	at := func(frac float64) {
		time.Sleep(time.Until(runStart.Add(time.Duration(frac * float64(seconds) * float64(time.Second)))))
	}

	at(killFrac)
	killedAt := time.Now()
	hubs[0].cmd.Process.Signal(syscall.SIGKILL)
	<-hubs[0].exited()
	waitFor("the killed hub's helpers noticing", 10*time.Second, func() bool { return connected() < int64(p.helpers) })
	waitFor("every helper back after the SIGKILL", 60*time.Second, func() bool { return connected() == int64(p.helpers) })
	backAt := time.Now()

	// The change, once every helper is back: it must reach them all.
	at(changeFrac)
	time.Sleep(time.Until(backAt.Add(2 * time.Second)))
	next := signedDoc(b, bases[1], trusted).Version + 1
	for _, f := range fleets {
		f.send(fmt.Sprintf("target %d", next))
	}
	t0 := time.Now()
	adm("policy", "set", "load", doc.Services[0].ID, "blocked")
	changedAt := time.Now()
	adminTook := changedAt.Sub(t0)
	var dumps []fleetDump
	waitFor("the change reaching every helper", 30*time.Second, func() bool {
		dumps = dumps[:0]
		for _, f := range fleets {
			dumps = append(dumps, f.dump(b))
		}
		for _, d := range dumps {
			if slices.Contains(d.GotAt, 0) {
				return false
			}
		}
		return true
	})
	<-ran
	b.StopTimer()

	var moved, delivered []time.Duration
	for _, d := range dumps {
		for i := range d.GotAt {
			delivered = append(delivered, max(0, time.Duration(d.GotAt[i]-changedAt.UnixNano())))
			if d.LostAt[i] >= killedAt.UnixNano() && d.BackAt[i] > 0 {
				moved = append(moved, time.Duration(d.BackAt[i]-killedAt.UnixNano()))
			}
		}
	}
	slices.Sort(delivered)
	slices.Sort(moved)
	// Stop the hubs before reading the database: a group still committing
	// would otherwise land between the queries.
	for _, h := range hubs[1:] {
		h.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, h := range hubs[1:] {
		select {
		case <-h.exited():
		case <-time.After(40 * time.Second):
			b.Fatalf("a hub did not stop within 40 s of SIGTERM")
		}
	}
	tl := in.check(b, dsn, "load")
	b.Logf("reports: %d genuine sent at %d/s for %d s (%.0f/s answered); %d accepted, %d duplicate after a retry whose first attempt had committed; database: %d rows, %d spent tokens, %d counted",
		tl.Genuine, issueRate, seconds, tl.PerSec, tl.Accepted, tl.DupAfterRetry, tl.Rows, tl.Spent, tl.Counted)
	b.Logf("reports refused (final), by reason: %s", sortedCounts(tl.RefusedBy))
	b.Logf("reports retried on another hub: %d (%d in doubt), by cause: %s", tl.Retried, tl.InDoubt, sortedCounts(tl.RetriedBy))
	b.Logf("retries by second of the run (kill at %.0f s, change at %.1f s): %s", killedAt.Sub(runStart).Seconds(), changedAt.Sub(runStart).Seconds(), bySecond(tl.RetriesBySecond))
	b.Logf("a genuine report's time to its final answer, retries included: p50 %v, p99 %v", tl.Took50.Round(time.Millisecond), tl.Took99.Round(time.Millisecond))
	b.Logf("kill: %d helpers moved, all %d back %v after the SIGKILL; change: admin took %v, then p50 %v p99 %v max %v to every helper",
		len(moved), p.helpers, backAt.Sub(killedAt).Round(time.Millisecond), adminTook.Round(time.Millisecond),
		quantile(delivered, 0.5).Round(time.Millisecond), quantile(delivered, 0.99).Round(time.Millisecond), delivered[len(delivered)-1].Round(time.Millisecond))

	b.ReportMetric(float64(p.helpers), "helpers")
	b.ReportMetric((rss1-rss0)/float64(p.helpers), "hub-KiB/conn")
	b.ReportMetric(fleetRSS/float64(p.helpers), "client-KiB/conn")
	b.ReportMetric(float64(len(moved)), "moved-helpers")
	b.ReportMetric(quantile(moved, 0.99).Seconds(), "reconnect-p99-s")
	b.ReportMetric(backAt.Sub(killedAt).Seconds(), "all-back-s")
	b.ReportMetric(ms(quantile(delivered, 0.5)), "change-p50-ms")
	b.ReportMetric(ms(quantile(delivered, 0.99)), "change-p99-ms")
	b.ReportMetric(ms(delivered[len(delivered)-1]), "change-max-ms")
	b.ReportMetric(tl.PerSec, "reports/s")
	b.ReportMetric(ms(tl.Took99), "report-p99-ms")
	b.ReportMetric(float64(tl.Accepted+tl.DupAfterRetry), "stored")
	b.ReportMetric(float64(tl.Retried), "retried")
	b.ReportMetric(float64(tl.Genuine-tl.Accepted-tl.DupAfterRetry), "lost")
}
