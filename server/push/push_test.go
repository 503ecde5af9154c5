//go:build unix

package push

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func serve(t *testing.T, h *Hub) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLatestOnConnectThenEachPublish(t *testing.T) {
	h := New(Options{})
	url := serve(t, h)
	h.Publish([]byte("v1"))
	c := dial(t, url, nil)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"v1", "v2", "v3"} {
		if want != "v1" {
			h.Publish([]byte(want))
		}
		_, msg, err := c.ReadMessage()
		if err != nil || string(msg) != want {
			t.Fatalf("got %q, %v; want %q", msg, err, want)
		}
	}
}

func TestOrigin(t *testing.T) {
	h := New(Options{})
	url := serve(t, h)
	host := strings.TrimPrefix(url, "ws://")
	cases := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // the helper sends no Origin
		{"http://" + host, true},
		{"https://evil.example", false},
		{"chrome-extension://namjglpjppneocddaipepcedcopfegan", false},
		{"null", false},
	}
	for _, tc := range cases {
		hdr := http.Header{}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial(url, hdr)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			c.Close()
		} else if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: got %v, want 403", tc.origin, err)
		}
	}
}

func TestManyClientsAndAStalledOne(t *testing.T) {
	const n = 200
	h := New(Options{SendBuffer: 2, WriteTimeout: 30 * time.Second, SocketSendBuffer: 64 << 10})
	url := serve(t, h)

	// The stalled client completes the handshake and then never reads, so
	// its socket buffers fill and the hub's writes to it block.
	raw, err := dialSmallBuffer(strings.TrimPrefix(url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("stalled client handshake: %v %v", resp, err)
	}

	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = dial(t, url, nil)
	}
	waitFor(t, "all clients registered", func() bool { return h.Clients() == n+1 })

	// Large messages fill the stalled client's buffers quickly.
	const rounds = 24
	payload := strings.Repeat("x", 64<<10)
	var wg sync.WaitGroup
	got := make([]int, n)
	var delivered [rounds]atomic.Int32
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for got[i] < rounds {
				_, r, err := c.NextReader()
				if err != nil {
					t.Errorf("client %d: %v after %d messages", i, err, got[i])
					return
				}
				head := make([]byte, 2)
				if _, err := io.ReadFull(r, head); err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				io.Copy(io.Discard, r)
				if want := fmt.Sprintf("%02d", got[i]); string(head) != want {
					t.Errorf("client %d: message %q, want %q (in order)", i, head, want)
					return
				}
				delivered[got[i]].Add(1)
				got[i]++
			}
		}()
	}
	for r := 0; r < rounds; r++ {
		start := time.Now()
		h.Publish([]byte(fmt.Sprintf("%02d", r) + payload))
		if d := time.Since(start); d > time.Second {
			t.Errorf("publish %d took %v: it must never wait for a client", r, d)
		}
		// Every reading client gets each round while the stalled one is
		// stuck (its writer blocked, then dropped): the next round goes out
		// only once they all have it, so however slow this machine is,
		// only the stalled client ever falls behind.
		waitFor(t, fmt.Sprintf("round %d to reach every reading client", r), func() bool {
			return delivered[r].Load() == n
		})
	}
	wg.Wait()
	if h.Dropped() != 1 {
		t.Fatalf("dropped %d clients, want exactly the stalled one", h.Dropped())
	}
	waitFor(t, "the stalled client to be gone", func() bool { return h.Clients() == n })
}

func TestReadLimitAndDeadPeer(t *testing.T) {
	// A pong wait of a second, not a few milliseconds: under -race on two
	// loaded cores a live client's answer can take a few hundred.
	h := New(Options{PingInterval: 100 * time.Millisecond, PongWait: time.Second, ReadLimit: 64})
	url := serve(t, h)

	// A client that sends more than the read limit is disconnected.
	big := dial(t, url, nil)
	if err := big.WriteMessage(websocket.TextMessage, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	big.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := big.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("oversize frame: got %v, want close 1009", err)
	}

	// A reading client answers pings (gorilla does in ReadMessage) and
	// stays; a client that never reads never answers and is given up.
	alive := dial(t, url, nil)
	go func() {
		for {
			if _, _, err := alive.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// A client that never reads but pings on its own (as the helper does)
	// shows it is alive as well.
	pinger := dial(t, url, nil)
	stopPing := make(chan struct{})
	defer close(stopPing)
	go func() {
		for {
			select {
			case <-stopPing:
				return
			case <-time.After(100 * time.Millisecond):
				pinger.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
			}
		}
	}()
	_ = dial(t, url, nil) // never reads, never pings
	waitFor(t, "three clients", func() bool { return h.Clients() == 3 })
	waitFor(t, "the silent client to be given up", func() bool { return h.Clients() == 2 })
	time.Sleep(2 * time.Second) // two pong waits
	if h.Clients() != 2 {
		t.Fatalf("%d clients: the ones answering or sending pings must stay", h.Clients())
	}
	if h.Dropped() != 0 {
		t.Fatalf("a dead peer counted as slow: %d", h.Dropped())
	}
}

func TestMaxClientsAndClose(t *testing.T) {
	h := New(Options{MaxClients: 1})
	url := serve(t, h)
	c := dial(t, url, nil)
	waitFor(t, "one client", func() bool { return h.Clients() == 1 })
	if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second client: %v, want 503", err)
	}
	h.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after Close: %v, want going away", err)
	}
}
