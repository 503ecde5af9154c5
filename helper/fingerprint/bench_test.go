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
				if strings.Contains(strings.ToLower(pageTitle(body)), strings.ToLower(p)) {
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
	// Baseline, paired in time with the set so that load from other
	// processes affects both alike: each round runs the naive loop once and
	// the set pairedN times.
	const rounds, pairedN = 5, 20
	var naive, paired time.Duration
	for i := 0; i < rounds; i++ {
		start := time.Now()
		naiveMatch(set, body)
		naive += time.Since(start)
		start = time.Now()
		for j := 0; j < pairedN; j++ {
			set.Match(resp)
		}
		paired += time.Since(start)
	}
	naiveNs := float64(naive.Nanoseconds()) / rounds
	pairedNs := float64(paired.Nanoseconds()) / (rounds * pairedN)

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		set.Match(resp)
	}
	b.StopTimer()
	b.ReportMetric(naiveNs, "naive-ns/op")
	b.ReportMetric(naiveNs/pairedNs, "x-faster-than-naive")
	b.ReportMetric(float64(set.Len()), "fingerprints")
}
