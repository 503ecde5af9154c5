//go:build unix

package push

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The push benchmark needs 10,000 client connections beside the hub's
// 10,000, more file descriptors than one process may usually hold, and a
// memory figure for the hub's side alone. So the clients live in a child
// process: this same test binary, started with DETOUR_PUSH_FLEET set, which
// TestMain turns into the client fleet.
func TestMain(m *testing.M) {
	if url := os.Getenv("DETOUR_PUSH_FLEET"); url != "" {
		os.Exit(runFleet(url))
	}
	os.Exit(m.Run())
}

// benchPayload is about the size of the real signed whitelist (99 services:
// ~28 KB).
const benchPayload = 28 << 10

// stamp is the message header the fleet reads: sequence and send time.
const stampLen = 16 + 1 + 19 + 1

func stamped(seq int, pad []byte) []byte {
	msg := fmt.Appendf(nil, "%016d %019d ", seq, time.Now().UnixNano())
	return append(msg, pad...)
}

// raiseNoFile lifts the soft open-file limit to the hard one and returns
// it.
func raiseNoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// BenchmarkPush measures how long a new version takes to reach 10,000
// WebSocket clients on loopback (each client's latency from Publish to
// having the whole message), and the hub's memory per connection, beside a
// baseline: the same fan-out over in-process channels to 10,000 goroutines.
func BenchmarkPush(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("DETOUR_PUSH_BENCH_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	if lim := raiseNoFile(); lim < uint64(n)+256 {
		b.Logf("open-file limit %d: testing %d clients instead of %d", lim, lim-256, n)
		n = int(lim - 256)
	}
	pad := []byte(strings.Repeat("x", benchPayload-stampLen))

	var chanP99 float64
	b.Run(fmt.Sprintf("channels-%d", n), func(b *testing.B) {
		lat := channelFanout(b, n, pad)
		p50, p99, max := percentiles(lat)
		chanP99 = p99
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(max, "max-ms")
	})

	h := New(Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()
	defer h.Close()

	before := serverMemory()
	fleet := exec.Command(os.Args[0], "-test.run=^$")
	fleet.Env = append(os.Environ(), "DETOUR_PUSH_FLEET=ws://"+ln.Addr().String()+"/", "DETOUR_PUSH_BENCH_CLIENTS="+strconv.Itoa(n))
	fleet.Stderr = os.Stderr
	stdin, _ := fleet.StdinPipe() // closing it ends the fleet
	out, _ := fleet.StdoutPipe()
	if err := fleet.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		fleet.Wait()
	}()
	lines := bufio.NewReaderSize(out, 1<<20)
	if line, err := lines.ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
		b.Fatalf("fleet: %q %v", line, err)
	}
	for h.Clients() < n {
		time.Sleep(10 * time.Millisecond)
	}
	after := serverMemory()
	perConn := float64(after.bytes-before.bytes) / float64(n)
	goroutines := float64(after.goroutines-before.goroutines) / float64(n)

	seq := 0
	b.Run(fmt.Sprintf("websocket-%d", n), func(b *testing.B) {
		var all []float64
		var publish time.Duration
		for i := 0; i < b.N; i++ {
			seq++
			msg := stamped(seq, pad)
			t := time.Now()
			h.Publish(msg)
			publish += time.Since(t)
			line, err := lines.ReadString('\n')
			if err != nil {
				b.Fatalf("fleet: %v", err)
			}
			lat, err := parseRound(line, seq)
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, lat...)
		}
		p50, p99, max := percentiles(all)
		b.ReportMetric(p50, "p50-ms")
		b.ReportMetric(p99, "p99-ms")
		b.ReportMetric(max, "max-ms")
		b.ReportMetric(float64(publish.Microseconds())/float64(b.N), "publish-µs")
		b.ReportMetric(perConn, "hub-B/conn")
		b.ReportMetric(goroutines, "goroutines/conn")
		if chanP99 > 0 {
			b.ReportMetric(p99/chanP99, "p99-vs-channels")
		}
		if h.Dropped() > 0 {
			b.Logf("%d clients dropped as too slow", h.Dropped())
		}
	})
}

type memFigures struct {
	bytes      uint64
	goroutines int
}

// serverMemory is the heap and stacks in use after a collection: what the
// hub's connections hold, without garbage.
func serverMemory() memFigures {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memFigures{bytes: ms.HeapInuse + ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// channelFanout is the baseline: b.N messages to n goroutines, each on its
// own buffered channel, latencies in milliseconds.
func channelFanout(b *testing.B, n int, pad []byte) []float64 {
	chans := make([]chan []byte, n)
	lat := make([]int64, n)
	var wg sync.WaitGroup
	var done sync.WaitGroup
	for i := range chans {
		chans[i] = make(chan []byte, 4)
		done.Add(1)
		go func() {
			defer done.Done()
			for msg := range chans[i] {
				t0, _ := strconv.ParseInt(string(msg[17:36]), 10, 64)
				lat[i] = time.Now().UnixNano() - t0
				wg.Done()
			}
		}()
	}
	var all []float64
	for r := 0; r < b.N; r++ {
		wg.Add(n)
		msg := stamped(r, pad)
		for _, c := range chans {
			c <- msg
		}
		wg.Wait()
		for _, l := range lat {
			all = append(all, float64(l)/1e6)
		}
	}
	for _, c := range chans {
		close(c)
	}
	done.Wait()
	return all
}

func percentiles(ms []float64) (p50, p99, max float64) {
	if len(ms) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(ms)
	at := func(q float64) float64 { return ms[int(q*float64(len(ms)-1))] }
	return at(0.50), at(0.99), ms[len(ms)-1]
}

// parseRound reads the fleet's report for one message: "seq lat lat ...",
// latencies in nanoseconds.
func parseRound(line string, seq int) ([]float64, error) {
	f := strings.Fields(line)
	if len(f) < 1 || f[0] != strconv.Itoa(seq) {
		return nil, fmt.Errorf("fleet reported %.40q, want round %d", line, seq)
	}
	out := make([]float64, 0, len(f)-1)
	for _, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("fleet: %w", err)
		}
		out = append(out, float64(v)/1e6)
	}
	return out, nil
}

// runFleet is the child process: it connects n clients to url, says
// "ready", and for each message reports every client's latency once all
// have it. It ends when its standard input closes.
func runFleet(url string) int {
	n, _ := strconv.Atoi(os.Getenv("DETOUR_PUSH_BENCH_CLIENTS"))
	raiseNoFile()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	dialer := websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 256, HandshakeTimeout: 30 * time.Second}

	var mu sync.Mutex
	rounds := map[int]*fleetRound{}
	out := bufio.NewWriter(os.Stdout)
	roundFor := func(seq int) *fleetRound {
		mu.Lock()
		defer mu.Unlock()
		r := rounds[seq]
		if r == nil {
			r = &fleetRound{lat: make([]int64, n)}
			rounds[seq] = r
		}
		return r
	}
	report := func(seq int, r *fleetRound) {
		mu.Lock()
		defer mu.Unlock()
		delete(rounds, seq)
		fmt.Fprint(out, seq)
		for _, l := range r.lat {
			fmt.Fprintf(out, " %d", l)
		}
		fmt.Fprintln(out)
		out.Flush()
	}

	conns := make([]*websocket.Conn, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				var err error
				for try := 0; try < 5; try++ {
					if conns[i], _, err = dialer.Dial(url, nil); err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "fleet: client %d: %v\n", i, err)
					os.Exit(1)
				}
			}
		}()
	}
	wg.Wait()
	for i, c := range conns {
		go func() {
			head := make([]byte, stampLen)
			for {
				_, r, err := c.NextReader()
				if err != nil {
					return
				}
				if _, err := io.ReadFull(r, head); err != nil {
					return
				}
				io.Copy(io.Discard, r)
				now := time.Now().UnixNano()
				seq, _ := strconv.Atoi(string(head[:16]))
				t0, _ := strconv.ParseInt(string(head[17:36]), 10, 64)
				round := roundFor(seq)
				round.lat[i] = now - t0
				if round.got.Add(1) == int64(n) {
					report(seq, round)
				}
			}
		}()
	}
	fmt.Fprintln(out, "ready", n)
	out.Flush()
	select {}
}

type fleetRound struct {
	lat []int64
	got atomic.Int64
}
