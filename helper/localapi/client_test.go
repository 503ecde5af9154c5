package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/detour-project/detour/helper/localapi/localapitest"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/paths/pathstest"
	"github.com/detour-project/detour/shared/protocol"
)

// fakeAgent serves the socket with a tiny echo protocol: "echo" returns its
// params, "fail" returns error 7, "push" sends an event before replying,
// "hang" never answers.
func fakeAgent(t *testing.T, dirs paths.Dirs) net.Listener {
	t.Helper()
	return localapitest.Serve(t, dirs, func(req protocol.Request, err error, b []byte, w *nativemsg.Writer) bool {
		if err != nil {
			w.WriteJSON(protocol.Reply{ID: 0, OK: false, Error: protocol.AsError(err)})
			return true
		}
		switch req.Type {
		case "echo":
			var m map[string]any
			json.Unmarshal(b, &m)
			w.WriteJSON(protocol.Reply{ID: req.ID, Type: req.Type, OK: true, Result: m})
		case "fail":
			w.WriteJSON(protocol.Reply{ID: req.ID, Type: req.Type, Error: protocol.Errorf(protocol.CodeNotEnrolled, "enrol first")})
		case "push":
			w.WriteJSON(protocol.Event{Type: "reports-changed", Data: map[string]int{"queued": 3}})
			w.WriteJSON(protocol.Reply{ID: req.ID, Type: req.Type, OK: true, Result: map[string]any{}})
		case "bye":
			return false
		case "hang":
		}
		return true
	})
}

func TestCall(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	ctx := context.Background()
	c, err := Dial(ctx, dirs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var echo map[string]any
	if err := c.Call(ctx, "echo", map[string]any{"host": "docs.google.com"}, &echo); err != nil {
		t.Fatal(err)
	}
	if echo["host"] != "docs.google.com" || echo["type"] != "echo" {
		t.Fatalf("echo result = %v", echo)
	}
	if _, ok := echo["id"].(float64); !ok {
		t.Fatalf("request had no numeric id: %v", echo)
	}

	err = c.Call(ctx, "fail", nil, nil)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeNotEnrolled {
		t.Fatalf("fail: err = %v, want protocol error 7", err)
	}

	if err := c.Call(ctx, "push", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-c.Events():
		var d struct{ Queued int }
		if ev.Type != "reports-changed" || ev.DecodeData(&d) != nil || d.Queued != 3 {
			t.Fatalf("event = %+v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no event")
	}

	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.Call(tctx, "hang", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: err = %v, want deadline exceeded", err)
	}
}

func TestConcurrentCallsMatchReplies(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	ctx := context.Background()
	c, err := Dial(ctx, dirs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := make(chan error, 50)
	for i := range 50 {
		go func() {
			var got struct{ N int }
			err := c.Call(ctx, "echo", map[string]int{"n": i}, &got)
			if err == nil && got.N != i {
				err = errors.New("reply matched to the wrong call")
			}
			errs <- err
		}()
	}
	for range 50 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestClosedConnection(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	ctx := context.Background()
	c, err := Dial(ctx, dirs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// "bye" makes the agent hang up instead of replying: the pending call and
	// every later one end with ErrClosed, and Events is closed.
	if err := c.Call(ctx, "bye", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("bye: err = %v, want ErrClosed", err)
	}
	if err := c.Call(ctx, "echo", nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: err = %v, want ErrClosed", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatal("events channel still open")
	}
}

func TestEncodeRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		params  any
		want    string
		wantErr bool
	}{
		{"nil", nil, `{"id":7,"type":"status"}`, false},
		{"empty struct", struct{}{}, `{"id":7,"type":"status"}`, false},
		{"map", map[string]any{"host": "a.example"}, `{"id":7,"type":"status","host":"a.example"}`, false},
		{"struct", struct {
			Version int `json:"version"`
		}{1}, `{"id":7,"type":"status","version":1}`, false},
		{"nil map", map[string]any(nil), `{"id":7,"type":"status"}`, false},
		{"array", []int{1}, "", true},
		{"string", "x", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeRequest(7, "status", tc.params)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tc.wantErr && string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestEnsureAgentRunning(t *testing.T) {
	dirs := pathstest.Short(t)
	fakeAgent(t, dirs)
	// An agent answers: nothing is started (the executable does not exist).
	if err := EnsureAgent(context.Background(), dirs, "/nonexistent/detour"); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureAgentFails(t *testing.T) {
	for _, tc := range []struct{ name, exe, want string }{
		{"missing executable", "/nonexistent/detour", "start"},
		{"agent exits with an error", "/bin/false", "exited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs := pathstest.Short(t)
			err := EnsureAgent(context.Background(), dirs, tc.exe)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
