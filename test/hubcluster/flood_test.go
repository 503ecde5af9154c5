//go:build linux

package hubcluster

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 17, defect 1: a hub limited to 1,024 descriptors, held by 1,500
// connections that send a report's headers and a Content-Length and then
// nothing (redialled whenever the hub closes one), still answers
// /api/v1/keys, the whitelist and the sign-in page; before the connection
// cap and the body deadline every route timed out for the whole flood.
func TestFloodOfStalledBodiesLeavesTheHubAnswering(t *testing.T) {
	h := startHub(t, 1024, "--data", t.TempDir())
	addr := strings.TrimPrefix(h.URL, "http://")

	const flood = 1500
	stop := make(chan struct{})
	var held, dialed, dialErrs atomic.Int64
	var wg sync.WaitGroup
	stall := "POST /api/v1/reports HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n"
	for i := 0; i < flood; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					dialErrs.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				dialed.Add(1)
				c.Write([]byte(stall))
				held.Add(1)
				// Hold it until the hub closes it (or answers and closes),
				// then come back: the flood never lets up.
				go func() { <-stop; c.Close() }()
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				held.Add(-1)
				c.Close()
				// Back at once would only measure how fast this machine
				// can churn sockets (and starve the tests running beside
				// this one); a short pause keeps all 1,500 coming back.
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	// Let the flood fill the hub.
	deadline := time.Now().Add(30 * time.Second)
	for dialed.Load() < flood && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	t.Logf("flood: %d dials, %d held now, %d dial errors", dialed.Load(), held.Load(), dialErrs.Load())
	if dialed.Load() < flood {
		t.Fatalf("only %d of %d flood connections were made", dialed.Load(), flood)
	}

	for i := 0; i < 3; i++ {
		for _, route := range []string{"/api/v1/keys", "/api/v1/whitelist", "/sign-in", "/healthz"} {
			start := time.Now()
			code, body := fetch(t, h.URL+route)
			if code != 200 {
				t.Fatalf("%s during the flood: %d %.200s", route, code, body)
			}
			if route == "/api/v1/keys" && !strings.Contains(string(body), "whitelist_keys") {
				t.Fatalf("keys during the flood: %.200s", body)
			}
			t.Logf("%s answered in %v during the flood", route, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(300 * time.Millisecond)
	}
	_, m := fetch(t, h.URL+"/metrics")
	metrics := string(m)
	fds, maxConns := metric(metrics, "process_open_fds"), metric(metrics, "detour_connections_max")
	t.Logf("hub: %v open descriptors, connection cap %v, %v evicted, %v refused at the report gate", fds, maxConns,
		metric(metrics, "detour_connections_evicted_total"), metric(metrics, `detour_connections_refused_total{limit="report-routes"}`))
	if fds >= 1024 || maxConns <= 0 || maxConns >= 1024 {
		t.Errorf("descriptors %v, cap %v: the cap must sit below the limit", fds, maxConns)
	}
	if strings.Contains(metrics, "127.0.0.1") || strings.Contains(h.logs.String(), "127.0.0.1:") && strings.Count(h.logs.String(), "127.0.0.1:") > 1 {
		t.Error("a client address reached the metrics or the log")
	}
}

// metric reads one sample's value from Prometheus text (-1 if absent).
func metric(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, name)), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
