package connlimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs h behind a Limiter of max connections on 127.0.0.1.
func serve(t *testing.T, max int, h http.Handler) (*Limiter, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Limiter{Max: max, Refusal: DefaultRefusal}
	srv := &http.Server{Handler: Body(2*time.Second, h), ConnState: l.ConnState, ConnContext: l.ConnContext,
		ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
	go srv.Serve(l.Listen(ln))
	t.Cleanup(func() { srv.Close() })
	return l, ln.Addr().String()
}

func dial(t *testing.T, addr, send string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// get sends one GET on a new connection and returns the status line.
func get(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(line)
}

func waitOpen(t *testing.T, l *Limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("open connections %d, want %d", l.Open(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Write([]byte("ok"))
})

func TestAtTheCapTheWorstConnectionMakesRoom(t *testing.T) {
	cases := []struct {
		name  string
		stall string // what each stalled connection sends
	}{
		{"silent connections", ""},
		{"half-sent headers", "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"headers then no body", "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n"},
		{"idle keep-alive", "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l, addr := serve(t, 4, ok)
			for i := 0; i < 4; i++ {
				dial(t, addr, c.stall)
			}
			waitOpen(t, l, 4)
			time.Sleep(Grace + 100*time.Millisecond)
			for i := 0; i < 3; i++ {
				if got := get(t, addr); got != "HTTP/1.1 200 OK" {
					t.Fatalf("request %d while stalled connections fill the cap: %q", i, got)
				}
			}
		})
	}
}

func TestAtTheCapBusyConnectionsAreKeptAndTheNewOneRefused(t *testing.T) {
	release := make(chan struct{})
	var busy atomic.Int32
	l, addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			busy.Add(1)
			<-release
		}
		w.Write([]byte("ok"))
	}))
	defer close(release)
	for i := 0; i < 2; i++ {
		dial(t, addr, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	for busy.Load() != 2 {
		time.Sleep(10 * time.Millisecond)
	}
	waitOpen(t, l, 2)
	if got := get(t, addr); got != "HTTP/1.1 503 Service Unavailable" {
		t.Fatalf("a connection beyond the cap, all others busy: %q", got)
	}
}

func TestBodyDeadline(t *testing.T) {
	errs := make(chan error, 1)
	_, addr := serve(t, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errs <- err
		if err == nil {
			// Slow after the body: the deadline must not cancel the answer.
			time.Sleep(2500 * time.Millisecond)
			if r.Context().Err() != nil {
				errs <- r.Context().Err()
			}
			w.Write([]byte("ok"))
		}
	}))
	dial(t, addr, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")
	select {
	case err := <-errs:
		if err == nil {
			t.Fatal("a body that never came was read")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a body that never came was waited for past the deadline")
	}
	c := dial(t, addr, "POST /r HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("a slow answer after a complete body: %q %v", line, err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("the request was cancelled while answering: %v", err)
	default:
	}
}

func TestGate(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var refused atomic.Int32
	g := Gate(1, 50*time.Millisecond, func() { refused.Add(1) }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	_, addr := serve(t, 0, g)
	dial(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	<-entered
	if got := get(t, addr); got != "HTTP/1.1 503 Service Unavailable" || refused.Load() != 1 {
		t.Fatalf("second request through a full gate: %q (refused %d)", got, refused.Load())
	}
	close(release)
}
