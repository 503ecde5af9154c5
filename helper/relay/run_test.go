//go:build unix

package relay_test

import (
	"context"
	"encoding/json"
	"github.com/detour-project/detour/helper/localapi/localapitest"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/paths/pathstest"
	"github.com/detour-project/detour/helper/relay"
	"github.com/detour-project/detour/shared/ids"
	"github.com/detour-project/detour/shared/protocol"
)

// fakeAgent answers every request, except that it hangs up on "report"
// ("drop") without replying, and on "diagnose" ("die") also stops
// listening, so nothing answers a reconnect. (The relay passes on only the
// request types the contract lets a browser send.)
func fakeAgent(t *testing.T, dirs paths.Dirs) {
	t.Helper()
	var ln net.Listener
	ln = localapitest.Serve(t, dirs, func(req protocol.Request, _ error, _ []byte, w *nativemsg.Writer) bool {
		switch req.Type {
		case drop:
			return false
		case die:
			ln.Close()
			return false
		}
		w.WriteJSON(protocol.Reply{ID: req.ID, Type: req.Type, OK: true, Result: map[string]any{}})
		return true
	})
}

const (
	echo = "status"
	drop = "report"
	die  = "diagnose"
)

type inProc struct {
	in   *io.PipeWriter
	out  chan protocol.Envelope
	exit chan int
}

func runInProc(t *testing.T, dirs paths.Dirs, exe string) *inProc {
	t.Helper()
	return runInProcWith(t, dirs, exe, 0)
}

func runInProcWith(t *testing.T, dirs paths.Dirs, exe string, healthyAfter time.Duration) *inProc {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &inProc{in: inW, out: make(chan protocol.Envelope, 100), exit: make(chan int, 1)}
	go func() {
		p.exit <- relay.Run(context.Background(), relay.Options{
			Args: []string{ids.ChromeOrigin(ids.ChromeExtensionID)}, In: inR, Out: outW,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Dirs: dirs, Exe: exe,
			Allowed: relay.AllowedIDs(), HealthyAfter: healthyAfter,
		})
		outW.Close()
	}()
	go func() {
		r := nativemsg.NewReader(outR)
		for {
			b, err := r.Read()
			if err != nil {
				close(p.out)
				return
			}
			var e protocol.Envelope
			json.Unmarshal(b, &e)
			p.out <- e
		}
	}()
	t.Cleanup(func() { inW.Close() })
	return p
}

func (p *inProc) send(t *testing.T, id int, typ string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ})
	if err := nativemsg.NewWriter(p.in).Write(b); err != nil {
		t.Fatal(err)
	}
}

func (p *inProc) reply(t *testing.T) protocol.Envelope {
	t.Helper()
	select {
	case e, ok := <-p.out:
		if !ok {
			t.Fatal("relay output ended")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
	return protocol.Envelope{}
}

func errCode(e protocol.Envelope) int {
	if e.Error == nil {
		return 0
	}
	return e.Error.Code
}

func TestAgentDropAnswersPendingAndReconnects(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	p := runInProc(t, dirs, "/nonexistent")
	p.send(t, 1, echo)
	if e := p.reply(t); *e.ID != 1 || !*e.OK {
		t.Fatalf("echo: %+v", e)
	}
	p.send(t, 2, drop)
	if e := p.reply(t); *e.ID != 2 || errCode(e) != protocol.CodeAgentDown || e.Type != drop {
		t.Fatalf("request lost with the agent: %+v", e)
	}
	// Reconnected: the next request is served.
	p.send(t, 3, echo)
	if e := p.reply(t); *e.ID != 3 || !*e.OK {
		t.Fatalf("after reconnect: %+v", e)
	}
	p.in.Close()
	if code := <-p.exit; code != 0 {
		t.Fatalf("exit %d on stdin EOF", code)
	}
}

func TestAgentGoneForGood(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	// Nothing can be started in its place.
	p := runInProc(t, dirs, "/bin/false")
	p.send(t, 1, die)
	if e := p.reply(t); *e.ID != 1 || errCode(e) != protocol.CodeAgentDown {
		t.Fatalf("pending request: %+v", e)
	}
	if e := p.reply(t); *e.ID != 0 || errCode(e) != protocol.CodeAgentDown {
		t.Fatalf("final error: %+v", e)
	}
	select {
	case code := <-p.exit:
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not exit")
	}
}

func TestNoAgentCanStart(t *testing.T) {
	dirs := pathstest.Short(t)
	p := runInProc(t, dirs, "/bin/false")
	if e := p.reply(t); *e.ID != 0 || errCode(e) != protocol.CodeAgentDown {
		t.Fatalf("reply: %+v", e)
	}
	if code := <-p.exit; code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}

// Losing the agent after a connection that served a while does not count
// towards giving up: a relay outlives any number of agent restarts spread
// over its life, while one that keeps dying at once is given up on (above).
func TestManySpreadRestartsKeepTheRelay(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	p := runInProcWith(t, dirs, "/nonexistent", 20*time.Millisecond)
	id := 1
	for range 6 { // twice the in-a-row limit
		p.send(t, id, echo)
		if e := p.reply(t); *e.ID != int64(id) || !*e.OK {
			t.Fatalf("echo %d: %+v", id, e)
		}
		time.Sleep(50 * time.Millisecond) // the connection has served a while
		p.send(t, id+1, drop)
		if e := p.reply(t); *e.ID != int64(id+1) || errCode(e) != protocol.CodeAgentDown {
			t.Fatalf("dropped request %d: %+v", id+1, e)
		}
		id += 2
	}
	p.send(t, id, echo)
	if e := p.reply(t); *e.ID != int64(id) || !*e.OK {
		t.Fatalf("after six restarts: %+v", e)
	}
}
