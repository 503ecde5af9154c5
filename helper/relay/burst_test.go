//go:build unix

package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

// pipeline writes n status requests with ids from first as one stream,
// without waiting for any reply, from a goroutine of its own: the relay may
// stop reading stdin while the agent catches up (backpressure), and the test
// must keep reading replies meanwhile.
func (p *proc) pipeline(first, n int) <-chan error {
	var buf bytes.Buffer
	for i := range n {
		b, _ := json.Marshal(map[string]any{"id": first + i, "type": "status"})
		buf.Write(binary.NativeEndian.AppendUint32(nil, uint32(len(b))))
		buf.Write(b)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.stdin.Write(buf.Bytes())
		done <- err
	}()
	return done
}

// Bursts of pipelined status requests through the real relay and agent are
// all answered, each exactly once and none with an error, and the relay
// still answers afterwards. Before the relay served each direction apart, a
// burst of 400 stalled it: the agent stopped reading (its in-flight bound),
// the relay blocked writing to it and stopped passing the agent's replies,
// and after 10 s the agent hung up and most requests ended with code 10.
func TestPipelinedBurstsAreAllAnswered(t *testing.T) {
	h := home(t)
	p := startRelay(t, h, chromeArgs)
	p.send(hello(1))
	wantOK(t, p.next(5*time.Second), 1, "hello")
	next := 2
	for _, n := range []int{800, 400, 400, 400} {
		written := p.pipeline(next, n)
		seen := make(map[float64]bool, n)
		for range n {
			m := p.next(60 * time.Second)
			id, _ := m["id"].(float64)
			if m["ok"] != true || m["type"] != "status" {
				t.Fatalf("burst of %d: reply %d of %d is %v", n, len(seen)+1, n, m)
			}
			if id < float64(next) || id >= float64(next+n) || seen[id] {
				t.Fatalf("burst of %d: unexpected or repeated id %v", n, id)
			}
			seen[id] = true
		}
		if err := <-written; err != nil {
			t.Fatalf("writing the burst: %v", err)
		}
		next += n
	}
	p.send(hello(next))
	wantOK(t, p.next(5*time.Second), float64(next), "hello")
}

// What only this computer's command line or tray may ask (contract.json's
// callers) is refused by the relay with local-only, and never reaches the
// agent: a browser cannot re-enrol the helper or point it at another hub.
func TestLocalOnlyRequestsRefused(t *testing.T) {
	h := home(t)
	p := startRelay(t, h, chromeArgs)
	p.send(hello(1))
	wantOK(t, p.next(5*time.Second), 1, "hello")
	p.send(map[string]any{"id": 2, "type": "enrol", "hub": "http://127.0.0.1:9", "code": "EVIL"})
	wantError(t, p.next(5*time.Second), 2, protocol.CodeLocalOnly)
	p.send(map[string]any{"id": 3, "type": "sync"})
	wantError(t, p.next(5*time.Second), 3, protocol.CodeLocalOnly)
	p.send(map[string]any{"id": 4, "type": "frobnicate"})
	wantError(t, p.next(5*time.Second), 4, protocol.CodeUnknownType)
	p.send(map[string]any{"id": 5, "type": "status"})
	st := wantOK(t, p.next(5*time.Second), 5, "status")
	if hub, _ := st["hub"].(map[string]any); hub == nil || hub["url"] != nil {
		t.Fatalf("the refused enrol changed the hub: %v", st["hub"])
	}
	// The agent's config never heard of the hub the extension named.
	filepath.WalkDir(h, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("127.0.0.1:9")) {
				t.Errorf("%s mentions the refused hub", path)
			}
		}
		return nil
	})
}

// One client that stops reading holds up only its own replies: while a
// browser's relay has a burst in flight and reads nothing, another client of
// the same agent (the command line, the tray, another browser) is answered
// at once; then the first reads on and gets every reply.
func TestStalledReaderHoldsUpOnlyItself(t *testing.T) {
	h := home(t)
	p := startRelay(t, h, chromeArgs)
	p.send(hello(1))
	wantOK(t, p.next(5*time.Second), 1, "hello")
	written := p.pipeline(2, 400) // nobody reads p's replies for now

	t.Setenv("DETOUR_HOME", h)
	dirs, err := paths.Default()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for range 5 {
		if _, err := cl.Status(ctx); err != nil {
			t.Fatalf("another client while the relay's reader stalls: %v", err)
		}
	}

	for i := range 400 {
		if m := p.next(30 * time.Second); m["ok"] != true {
			t.Fatalf("stalled relay's reply %d: %v", i+1, m)
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
}
