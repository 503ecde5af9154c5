package hubcluster

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
	"github.com/gorilla/websocket"
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

// BenchmarkClusterFailover is issue 15's load test scaled to what two
// shared cores hold: 3 hubs on one PostgreSQL database, N WebSocket helpers
// spread across them (3,000 unless DETOUR_BENCH_CLUSTER_CLIENTS says), one
// hub killed with SIGKILL, its helpers reconnecting (jitter up to 2 s, to a
// random hub, as behind a load balancer), then a policy change made with
// `admin`. Reported: memory per connection (hubs' RSS growth / N), the time
// until every helper is connected again, and the change's delivery to every
// helper (p50, p99, max), measured from the admin command's return.
func BenchmarkClusterFailover(b *testing.B) {
	if os.Getenv("DETOUR_TEST_POSTGRES") == "" && os.Getenv("DETOUR_BENCH_POSTGRES") != "" {
		b.Setenv("DETOUR_TEST_POSTGRES", os.Getenv("DETOUR_BENCH_POSTGRES"))
	}
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("DETOUR_BENCH_CLUSTER_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		clusterFailover(b, n)
	}
}

func clusterFailover(b *testing.B, n int) {
	dsn := storetest.PostgresDSN(b)
	mk := filepath.Join(b.TempDir(), "master.key")
	os.WriteFile(mk, masterkey.Generate(), 0o600)
	var hubs []*hubProc
	for range 3 {
		hubs = append(hubs, launch(b, 0, "--data", b.TempDir(), "--db", dsn, "--master-key-file", mk, "--max-ws-clients", "0"))
	}
	for _, h := range hubs {
		h.wait(b)
	}
	_, trusted := hubKeys(b, hubs[0].URL)
	time.Sleep(500 * time.Millisecond)
	var rss0 float64
	for _, h := range hubs {
		rss0 += rssKiB(h.cmd.Process.Pid)
	}

	var connected atomic.Int64
	var target atomic.Int64 // the version whose delivery is timed
	killed := make(chan struct{})
	var killedAt time.Time
	got := make([]atomic.Int64, n)  // arrival of target, unix ns
	back := make([]atomic.Int64, n) // reconnection after the kill, ns
	stop := make(chan struct{})
	var wg sync.WaitGroup
	urls := make([]string, len(hubs))
	for i, h := range hubs {
		urls[i] = "ws" + strings.TrimPrefix(h.URL, "http") + "/api/v1/whitelist/ws"
	}
	dialer := &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hub := i % len(hubs)
			lost := false
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, _, err := dialer.Dial(urls[hub], nil)
				if err != nil {
					time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second))))
					hub = rand.IntN(len(hubs))
					continue
				}
				connected.Add(1)
				if lost {
					back[i].Store(int64(time.Since(killedAt)))
				}
				go func() { <-stop; c.Close() }()
				for {
					_, msg, err := c.ReadMessage()
					if err != nil {
						break
					}
					if v := target.Load(); v > 0 && got[i].Load() == 0 {
						var env whitelist.Envelope
						if json.Unmarshal(msg, &env) == nil {
							if doc, _, err := whitelist.Verify(&env, trusted); err == nil && doc.Version >= v {
								got[i].Store(time.Now().UnixNano())
							}
						}
					}
				}
				connected.Add(-1)
				c.Close()
				select {
				case <-killed:
					lost = true
				default:
				}
				// Like the helper after a dropped connection: a random
				// pause, then the load balancer picks a hub.
				time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second))))
				hub = rand.IntN(len(hubs))
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	waitCount := func(what string, want int64, within time.Duration) time.Duration {
		start := time.Now()
		for connected.Load() < want {
			if time.Since(start) > within {
				b.Fatalf("%s: %d of %d helpers connected after %v", what, connected.Load(), want, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitCount("connecting", int64(n), 120*time.Second)
	time.Sleep(time.Second)
	var rss1 float64
	for _, h := range hubs {
		rss1 += rssKiB(h.cmd.Process.Pid)
	}

	b.ResetTimer()
	killedAt = time.Now()
	close(killed)
	hubs[0].cmd.Process.Signal(syscall.SIGKILL)
	<-hubs[0].exited()
	for connected.Load() >= int64(n) { // the killed hub's helpers notice
		time.Sleep(5 * time.Millisecond)
	}
	waitCount("reconnecting after SIGKILL", int64(n), 60*time.Second)
	allBack := time.Since(killedAt)

	// The admin command makes the next version: arm every helper for it,
	// then time its arrival from the command's return (a helper that had
	// it before the process even exited counts as 0).
	target.Store(signedDoc(b, hubs[1].URL, trusted).Version + 1)
	data := b.TempDir()
	admin(b, "--data", data, "--db", dsn, "--master-key-file", mk, "org", "add", "bench", "--name", "Bench")
	changedAt := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for i := range got {
			if got[i].Load() == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the change reached %d of %d helpers within 30 s", n-missing, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	var lostBack, delivered []time.Duration
	for i := range back {
		if d := back[i].Load(); d > 0 {
			lostBack = append(lostBack, time.Duration(d))
		}
		delivered = append(delivered, max(0, time.Duration(got[i].Load()-changedAt.UnixNano())))
	}
	slices.Sort(delivered)
	slices.Sort(lostBack)
	q := func(s []time.Duration, p float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	b.ReportMetric(float64(n), "helpers")
	b.ReportMetric((rss1-rss0)/float64(n), "KiB/conn")
	b.ReportMetric(float64(len(lostBack)), "moved-helpers")
	b.ReportMetric(q(lostBack, 0.99).Seconds(), "reconnect-p99-s")
	b.ReportMetric(allBack.Seconds(), "all-back-s")
	b.ReportMetric(float64(q(delivered, 0.5).Microseconds())/1000, "change-p50-ms")
	b.ReportMetric(float64(q(delivered, 0.99).Microseconds())/1000, "change-p99-ms")
	b.ReportMetric(float64(delivered[len(delivered)-1].Microseconds())/1000, "change-max-ms")
}
