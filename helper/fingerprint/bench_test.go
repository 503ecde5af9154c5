package fingerprint

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// page256K is a 256 KiB page of ordinary markup with a vendor phrase at the
// very end, so both matchers must read all of it.
func page256K() []byte {
	var b strings.Builder
	b.WriteString("<html><head><title>Quarterly planning board</title></head><body>\n")
	chunk := `<div class="card" data-id="1234"><h3>Task: Review the Shared Document</h3><p>Assigned to the Project Team. Comments: please check the figures before Friday, and update the Board with the Latest Status.</p></div>` + "\n"
	tail := "<p>Access to the web page you were trying to visit has been blocked in accordance with company policy.</p></body></html>"
	for b.Len()+len(chunk)+len(tail) < MaxBody {
		b.WriteString(chunk)
	}
	b.WriteString(tail)
	return []byte(b.String())
}

// naiveMatch is the baseline: every body and title pattern of every rule,
// each with its own strings.Contains(strings.ToLower(...)).
func naiveMatch(set *Set, body []byte) int {
	n := 0
	for _, fp := range set.Fingerprints() {
		for _, r := range fp.Rules {
			for _, p := range r.Body {
				if strings.Contains(strings.ToLower(string(body)), strings.ToLower(p)) {
					n++
				}
			}
			for _, p := range r.Title {
				if strings.Contains(strings.ToLower(Title(body)), strings.ToLower(p)) {
					n++
				}
			}
		}
	}
	return n
}

// BenchmarkMatch256K matches a 256 KiB page against the whole set and
// reports, beside it, the naive per-pattern loop measured in the same
// process and the ratio between the two (how many times faster).
func BenchmarkMatch256K(b *testing.B) {
	set := Default()
	body := page256K()
	resp := &Response{Status: 200, Header: http.Header{"Server": {"nginx"}}, Body: body}
	if m, ok := set.Best(resp); !ok || m.ID != "paloalto" {
		b.Fatalf("benchmark page not recognised: %+v", m)
	}
	if naiveMatch(set, body) == 0 {
		b.Fatal("baseline found nothing")
	}
	// Baseline: enough rounds to be measurable, outside the timed loop.
	const rounds = 5
	start := time.Now()
	for i := 0; i < rounds; i++ {
		naiveMatch(set, body)
	}
	naive := float64(time.Since(start).Nanoseconds()) / rounds

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		set.Match(resp)
	}
	b.StopTimer()
	ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(naive, "naive-ns/op")
	b.ReportMetric(naive/ours, "x-faster-than-naive")
	b.ReportMetric(float64(set.Len()), "fingerprints")
}
