package whitelist

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/detour-project/detour/helper/config"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// updates collects OnUpdate calls on a channel.
func updates(c *Client) <-chan int64 {
	ch := make(chan int64, 16)
	c.OnUpdate(func(d *wl.Document) { ch <- d.Version })
	return ch
}

func waitVersion(t *testing.T, ch <-chan int64, want int64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case v := <-ch:
			if v == want {
				return
			}
		case <-deadline:
			t.Fatalf("version %d not received within %v", want, within)
		}
	}
}

// TestPushDeliversNewVersion runs the client's loops against the test hub: a
// new version reaches it over the WebSocket within a second, a forged push
// is refused without dropping the connection, and the next good one arrives.
func TestPushDeliversNewVersion(t *testing.T) {
	hubKey, attacker := newKey(t), newKey(t)
	hub := newTestHub(t)
	now := time.Now()
	hub.set(sign(t, doc(t, 1, now, time.Hour), hubKey))
	c, _ := newClient(t, t.TempDir(), hub.URL(), hubKey)
	ch := updates(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	waitVersion(t, ch, 1, 5*time.Second)
	hub.waitConn(t) // the WebSocket is up before publishing
	gets, _, _ := hub.stats()

	hub.set(sign(t, doc(t, 2, now, time.Hour), hubKey))
	waitVersion(t, ch, 2, time.Second)

	hub.set(sign(t, doc(t, 3, now, time.Hour), attacker))
	hub.set(sign(t, doc(t, 4, now, time.Hour), hubKey))
	waitVersion(t, ch, 4, time.Second)
	if got, _, _ := hub.stats(); got != gets {
		t.Errorf("the pushes were fetched over HTTP (%d GETs, was %d): they should arrive on the socket", got, gets)
	}
	if version(c) != 4 {
		t.Errorf("version %d, want 4", version(c))
	}
}

// TestHubConfiguredLater: an agent started before enrolment has no hub; once
// the config names one and the client is kicked (the sync message does it),
// it fetches and connects.
func TestHubConfiguredLater(t *testing.T) {
	hubKey := newKey(t)
	hub := newTestHub(t)
	hub.set(sign(t, doc(t, 7, time.Now(), time.Hour), hubKey))
	c, s := newClient(t, t.TempDir(), "", hubKey)
	ch := updates(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(50 * time.Millisecond)
	if gets, _, _ := hub.stats(); gets != 0 || c.Current() != nil {
		t.Fatal("the client reached a hub it was not given")
	}
	s.set(func(cfg *config.Config) { cfg.Hub = hub.URL() })
	c.Kick()
	waitVersion(t, ch, 7, 5*time.Second)
}

func TestWSURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://127.0.0.1:8080", "ws://127.0.0.1:8080/api/v1/whitelist/ws"},
		{"https://hub.example/", "wss://hub.example/api/v1/whitelist/ws"},
		{"https://hub.example/detour", "wss://hub.example/detour/api/v1/whitelist/ws"},
		{"ftp://hub.example", ""},
	}
	for _, tc := range cases {
		got, err := wsURL(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("wsURL(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("wsURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDecodePush(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"bare envelope", `{"payload":"e30=","signatures":[]}`, true},
		{"wrapped", `{"type":"whitelist","envelope":{"payload":"e30=","signatures":[]}}`, true},
		{"no payload", `{"type":"hello"}`, false},
		{"not json", `nope`, false},
	}
	for _, tc := range cases {
		env, err := decodePush([]byte(tc.in))
		if (err == nil) != tc.ok || (tc.ok && env.Payload != "e30=") {
			t.Errorf("%s: %+v, %v", tc.name, env, err)
		}
	}
}

// TestPushReconnects: the hub drops every connection (a restart); the client
// reconnects after its backoff and gets the version published meanwhile,
// which the hub sends on connect.
func TestPushReconnects(t *testing.T) {
	key := newKey(t)
	hub := newTestHub(t)
	now := time.Now()
	hub.set(sign(t, doc(t, 1, now, time.Hour), key))
	c, _ := newClient(t, t.TempDir(), hub.URL(), key)
	ch := updates(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitVersion(t, ch, 1, 5*time.Second)
	hub.waitConn(t)

	hub.mu.Lock()
	for _, conn := range hub.conns {
		conn.Close()
	}
	hub.conns = nil
	hub.mu.Unlock()
	hub.set(sign(t, doc(t, 2, now, time.Hour), key)) // no one to push to
	waitVersion(t, ch, 2, 5*time.Second)
	hub.waitConn(t)
}

// A draining hub closes with 1012 (service restart): the helper comes back
// within restartSpread whatever its backoff had grown to, at a random
// moment; other endings keep the jittered backoff.
func TestRetryDelayAfterRestart(t *testing.T) {
	restart := fmt.Errorf("whitelist push: read: %w", &websocket.CloseError{Code: websocket.CloseServiceRestart, Text: "hub restarting"})
	other := fmt.Errorf("whitelist push: read: %w", &websocket.CloseError{Code: websocket.CloseGoingAway})
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		wait, r := retryDelay(restart, maxBackoff)
		if !r || wait <= 0 || wait > restartSpread {
			t.Fatalf("after 1012: wait %v restart %v, want within %v", wait, r, restartSpread)
		}
		seen[wait.Round(500*time.Millisecond)] = true
		if wait, r := retryDelay(other, 4*time.Second); r || wait < 2*time.Second || wait > 6*time.Second {
			t.Fatalf("after 1001: wait %v restart %v, want the backoff's jitter", wait, r)
		}
	}
	if len(seen) < 5 {
		t.Errorf("restart delays are not spread: %v", seen)
	}
}

// End to end: a hub that closes with 1012 sees the helper back and pushes
// the next version to it.
func TestPushReconnectsAfterRestartClose(t *testing.T) {
	key := newKey(t)
	hub := newTestHub(t)
	now := time.Now()
	hub.set(sign(t, doc(t, 1, now, time.Hour), key))
	c, _ := newClient(t, t.TempDir(), hub.URL(), key)
	ch := updates(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitVersion(t, ch, 1, 5*time.Second)
	hub.waitConn(t)
	hub.mu.Lock()
	for _, conn := range hub.conns {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseServiceRestart, "hub restarting"), time.Now().Add(time.Second))
		conn.Close()
	}
	hub.conns = nil
	hub.mu.Unlock()
	hub.waitConn(t)
	hub.set(sign(t, doc(t, 2, now, time.Hour), key))
	waitVersion(t, ch, 2, 5*time.Second)
}
