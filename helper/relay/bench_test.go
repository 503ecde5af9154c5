//go:build unix

package relay_test

import (
	"testing"
	"time"
)

// BenchmarkPipelinedStatus sends bursts of 800 status requests through the
// real relay binary to a real agent, pipelined (all written before any reply
// is read), beside the same 800 sent one at a time, each waiting for its
// reply (the baseline, measured in the same process). The ratio says what
// pipelining through the relay gains; before the relay served each direction
// apart, a burst of this size stalled.
func BenchmarkPipelinedStatus(b *testing.B) {
	const n = 800
	h := home(b)
	p := startRelay(b, h, chromeArgs)
	p.send(hello(1))
	p.next(10 * time.Second)
	id := 2

	start := time.Now()
	for range n {
		p.send(map[string]any{"id": id, "type": "status"})
		id++
		p.next(30 * time.Second)
	}
	sequential := float64(time.Since(start).Nanoseconds()) / n

	b.ResetTimer()
	for b.Loop() {
		written := p.pipeline(id, n)
		for range n {
			if m := p.next(60 * time.Second); m["ok"] != true {
				b.Fatalf("reply %v", m)
			}
		}
		if err := <-written; err != nil {
			b.Fatal(err)
		}
		id += n
	}
	pipelined := float64(b.Elapsed().Nanoseconds()) / float64(b.N*n)
	b.ReportMetric(pipelined/1e3, "µs/status-pipelined")
	b.ReportMetric(sequential/1e3, "µs/status-sequential")
	b.ReportMetric(sequential/pipelined, "x-faster-pipelined")
}
