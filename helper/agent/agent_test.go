package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testDirs keeps the socket path under the ~108-byte sun_path limit.
func testDirs(t testing.TB) paths.Dirs {
	t.Helper()
	d, err := os.MkdirTemp("", "dt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return paths.Dirs{Config: filepath.Join(d, "c"), State: filepath.Join(d, "s"), Runtime: filepath.Join(d, "r")}
}

// runAgent runs Run in-process until the test ends and returns its dirs.
func runAgent(t testing.TB, dirs paths.Dirs, opts Options) {
	t.Helper()
	opts.Dirs, opts.NoTray = dirs, true
	if opts.Log == nil {
		opts.Log = quiet
	}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("agent not ready")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
}

func dial(t testing.TB, dirs paths.Dirs) *localapi.Client {
	t.Helper()
	c, err := localapi.Dial(context.Background(), dirs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) int {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

func TestCoreRequests(t *testing.T) {
	dirs := testDirs(t)
	runAgent(t, dirs, Options{Hub: "http://127.0.0.1:9"})
	c := dial(t, dirs)
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		typ      string
		params   any
		wantCode int
	}{
		{"hello", "hello", map[string]any{"version": 1, "browser": "chrome"}, 0},
		{"hello from the tray", "hello", map[string]any{"version": 1, "browser": "tray"}, 0},
		{"hello, newer protocol", "hello", map[string]any{"version": 2, "browser": "chrome"}, protocol.CodeBadVersion},
		{"hello, unknown browser", "hello", map[string]any{"version": 1, "browser": "mosaic"}, protocol.CodeInvalidParams},
		{"hello, no version", "hello", map[string]any{"browser": "chrome"}, protocol.CodeInvalidParams},
		{"hello, huge extra field", "hello", map[string]any{"version": 1, "browser": "chrome", "pad": strings.Repeat("\x01", 100000)}, protocol.CodeInvalidParams},
		{"status", "status", nil, 0},
		{"settings read", "settings", nil, 0},
		{"settings set", "settings", map[string]any{"set": map[string]any{"report_automatically": true}}, 0},
		{"settings pause", "settings", map[string]any{"set": map[string]any{"paused_until": "2030-01-01T10:00:00Z"}}, 0},
		{"settings unpause", "settings", map[string]any{"set": map[string]any{"paused_until": nil}}, 0},
		{"settings wrong type", "settings", map[string]any{"set": map[string]any{"report_automatically": "yes"}}, protocol.CodeInvalidParams},
		{"unknown type", "frobnicate", nil, protocol.CodeUnknownType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res json.RawMessage
			err := c.Call(context.Background(), tc.typ, tc.params, &res)
			if code(err) != tc.wantCode || (tc.wantCode == 0 && err != nil) {
				t.Fatalf("err = %v, want code %d", err, tc.wantCode)
			}
			if err != nil {
				if msg := err.(*protocol.Error).Message; len(msg) > 600 || strings.ContainsRune(msg, 1) {
					t.Fatalf("error message not kept short and clean: %.80q (%d bytes)", msg, len(msg))
				}
				return
			}
			if err := set.ValidateResult(tc.typ, res); err != nil {
				t.Fatalf("result %s breaks the schema: %v", res, err)
			}
		})
	}

	var st protocol.StatusResult
	if err := c.Call(context.Background(), "status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Hub.URL == nil || *st.Hub.URL != "http://127.0.0.1:9" || !st.Settings.ReportAutomatically || st.Settings.PausedUntil != nil {
		t.Fatalf("status after the settings above: %+v", st)
	}
	if !st.Whitelist.Stale {
		t.Fatal("a hub without a whitelist should read as stale")
	}
}

func TestSettingsChangeReachesEveryClient(t *testing.T) {
	dirs := testDirs(t)
	runAgent(t, dirs, Options{})
	a, b := dial(t, dirs), dial(t, dirs)
	if err := b.Call(context.Background(), "status", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Call(context.Background(), "settings", map[string]any{"set": map[string]any{"report_automatically": true}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*localapi.Client{a, b} {
		select {
		case ev := <-c.Events():
			var s protocol.Settings
			if ev.Type != protocol.EventSettingsChanged || ev.DecodeData(&s) != nil || !s.ReportAutomatically {
				t.Fatalf("event = %+v", ev)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no settings-changed event")
		}
	}
	// The change was saved.
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil || !cfg.Get().ReportAutomatically {
		t.Fatalf("config after change: %+v, %v", cfg.Get(), err)
	}
}

func TestManagedSettingIsRefused(t *testing.T) {
	dirs := testDirs(t)
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	// The person had turned it off and had a stale managed list; the
	// organisation's policy file turns it on and is applied at start.
	cfg, _ := config.Open(dirs.ConfigFile())
	cfg.Update(func(c *config.Config) error {
		c.ReportAutomatically = false
		c.Managed = []string{"hub"}
		return nil
	})
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "detour"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "detour", "managed.json"), []byte(`{"report_automatically": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ManagedRootEnv, root)
	runAgent(t, dirs, Options{})
	c := dial(t, dirs)
	// The whole change is refused, including the part that is not managed.
	err := c.Call(context.Background(), "settings", map[string]any{"set": map[string]any{"report_automatically": false, "paused_until": "2030-01-01T00:00:00Z"}}, nil)
	if code(err) != protocol.CodeInvalidParams {
		t.Fatalf("err = %v, want code 5", err)
	}
	var s protocol.Settings
	if err := c.Call(context.Background(), "settings", nil, &s); err != nil {
		t.Fatal(err)
	}
	if !s.ReportAutomatically || s.PausedUntil != nil || len(s.Managed) != 1 || s.Managed[0] != SettingReportAutomatically {
		t.Fatalf("settings after refusal: %+v", s)
	}
	if err := c.Call(context.Background(), "settings", map[string]any{"set": map[string]any{"paused_until": "2030-01-01T00:00:00Z"}}, &s); err != nil || s.PausedUntil == nil {
		t.Fatalf("an unmanaged setting: %+v, %v", s, err)
	}
}

func TestOneAgentPerUser(t *testing.T) {
	dirs := testDirs(t)
	runAgent(t, dirs, Options{})
	err := Run(context.Background(), Options{Dirs: dirs, NoTray: true, Log: quiet})
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second agent: %v, want ErrAlreadyRunning", err)
	}
	// The first still serves.
	if err := dial(t, dirs).Call(context.Background(), "status", nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestStaleSocketAndShutdown(t *testing.T) {
	dirs := testDirs(t)
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	// A socket file left by a crashed agent: nothing listens on it.
	ln, err := net.Listen("unix", dirs.Socket())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(dirs.Socket()); err != nil {
		t.Fatal("stale socket not left behind")
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Dirs: dirs, NoTray: true, Log: quiet, Ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent refused a stale socket: %v", err)
	}
	fi, err := os.Stat(dirs.Socket())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, mode %v", err, fi.Mode())
	}
	c := dial(t, dirs)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirs.Socket()); !os.IsNotExist(err) {
		t.Fatalf("socket still there after shutdown: %v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("client connection not closed at shutdown")
	}
}

func TestBadHubRefused(t *testing.T) {
	for _, hub := range []string{"ftp://hub.example", "hub.example", "http://"} {
		err := Run(context.Background(), Options{Dirs: testDirs(t), Hub: hub, NoTray: true, Log: quiet})
		if err == nil || !strings.Contains(err.Error(), "--hub") {
			t.Errorf("hub %q: err = %v", hub, err)
		}
	}
}

// startServer runs the connection handling alone, with handlers a test adds.
func startServer(t *testing.T, timeout time.Duration, setup func(*Registry)) (*server, string) {
	t.Helper()
	dirs := testDirs(t)
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	srv := newServer(quiet, timeout)
	srv.reg = NewRegistry(srv.broadcast)
	setup(srv.reg)
	srv.setReady()
	ln, err := net.Listen("unix", dirs.Socket())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); ln.Close(); srv.closeAll(); <-done })
	return srv, dirs.Socket()
}

func TestHandlerFailures(t *testing.T) {
	started := make(chan struct{}, 10)
	// stuck ignores its context and returns only when the test ends; it
	// holds its slot (and the server's shutdown) until then.
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	_, sock := startServer(t, 200*time.Millisecond, func(r *Registry) {
		r.Handle("blocks", func(ctx context.Context, _ protocol.Request) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
		r.Handle("slow", func(ctx context.Context, _ protocol.Request) (any, error) { <-ctx.Done(); return nil, ctx.Err() })
		r.Handle("stuck", func(context.Context, protocol.Request) (any, error) { <-release; return nil, nil })
		r.Handle("panics", func(context.Context, protocol.Request) (any, error) { panic("boom") })
		r.Handle("huge", func(context.Context, protocol.Request) (any, error) { return strings.Repeat("x", 2<<20), nil })
		r.Handle("fails", func(context.Context, protocol.Request) (any, error) { return nil, errors.New("disk full") })
		r.Handle("quick", func(context.Context, protocol.Request) (any, error) { return map[string]int{"n": 1}, nil })
	})
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c := localapi.NewClient(conn)
	defer c.Close()
	for _, tc := range []struct {
		typ  string
		want int
	}{
		{"slow", protocol.CodeTimeout},
		{"stuck", protocol.CodeTimeout},
		{"panics", protocol.CodeInternal},
		{"huge", protocol.CodeInternal},
		{"fails", protocol.CodeInternal},
		{"quick", 0},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			if err := c.Call(context.Background(), tc.typ, nil, nil); code(err) != tc.want {
				t.Fatalf("err = %v, want code %d", err, tc.want)
			}
		})
	}
	// A stuck request does not hold up the next one on the same connection.
	errs := make(chan error, 1)
	go func() { errs <- c.Call(context.Background(), "blocks", nil, nil) }()
	<-started
	if err := c.Call(context.Background(), "quick", nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 0 {
		t.Fatal("quick request waited for the blocked one")
	}
	if err := <-errs; code(err) != protocol.CodeTimeout {
		t.Fatalf("blocked request: %v", err)
	}

	// A handler answered with CodeTimeout keeps its slot until it returns:
	// with every slot held by stuck handlers (one from above), the next
	// request waits, and is answered once they return.
	var wg sync.WaitGroup
	for range maxInFlight - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Call(context.Background(), "stuck", nil, nil); code(err) != protocol.CodeTimeout {
				t.Errorf("stuck: %v, want a timeout", err)
			}
		}()
	}
	wg.Wait()
	waited, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Call(waited, "quick", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("quick with every slot held by a stuck handler: %v, want it to wait", err)
	}
	once.Do(func() { close(release) })
	if err := c.Call(context.Background(), "quick", nil, nil); err != nil {
		t.Fatalf("quick once the stuck handlers returned: %v", err)
	}
}

func TestFrameErrorsOnTheSocket(t *testing.T) {
	_, sock := startServer(t, time.Second, func(r *Registry) { registerCoreForTest(r) })
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, r := nativemsg.NewWriter(conn), nativemsg.NewReader(conn)
	conn.Write([]byte{0, 0, 0, 0})
	big := make([]byte, 4+(2<<20))
	big[0], big[1], big[2] = 0, 0, 0x20 // 2 MiB, little-endian
	conn.Write(big)
	w.Write([]byte(`{"type":"ping"}`))
	w.Write([]byte(`{"id":5,"type":"ping"}`))
	for _, want := range []struct {
		id   int64
		code int
	}{{0, protocol.CodeZeroLength}, {0, protocol.CodeTooLarge}, {0, protocol.CodeMalformed}, {5, 0}} {
		b, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		var rep protocol.Envelope
		json.Unmarshal(b, &rep)
		got := 0
		if rep.Error != nil {
			got = rep.Error.Code
		}
		if rep.ID == nil || *rep.ID != want.id || got != want.code {
			t.Fatalf("reply %s, want id %d code %d", b, want.id, want.code)
		}
	}
}

func registerCoreForTest(r *Registry) {
	r.Handle("ping", func(context.Context, protocol.Request) (any, error) { return map[string]bool{"pong": true}, nil })
}

// TestSlowClientLosesEventsNotReplies: a client that stops reading must not
// stall the agent or other clients; when it reads again its replies are all
// there and only events are missing.
func TestSlowClientLosesEventsNotReplies(t *testing.T) {
	srv, sock := startServer(t, 5*time.Second, registerCoreForTest)
	slow, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fastConn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fast := localapi.NewClient(fastConn)
	defer fast.Close()
	if err := fast.Call(context.Background(), "ping", nil, nil); err != nil {
		t.Fatal(err)
	}
	sw := nativemsg.NewWriter(slow)
	sw.Write([]byte(`{"id":1,"type":"ping"}`))

	const events = 3000
	payload := strings.Repeat("e", 1000)
	for range events {
		srv.broadcast(protocol.Event{Type: "reports-changed", Data: map[string]string{"pad": payload}})
	}
	sw.Write([]byte(`{"id":2,"type":"ping"}`))
	// Meanwhile the fast client is served at once.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := fast.Call(ctx, "ping", nil, nil); err != nil {
		t.Fatalf("fast client stalled by the slow one: %v", err)
	}

	r := nativemsg.NewReader(slow)
	gotEvents, replies := 0, map[int64]bool{}
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(replies) < 2 {
		b, err := r.Read()
		if err != nil {
			t.Fatalf("slow client lost its replies: got %v after %d events: %v", replies, gotEvents, err)
		}
		var env protocol.Envelope
		json.Unmarshal(b, &env)
		if env.IsReply() {
			replies[*env.ID] = true
		} else {
			gotEvents++
		}
	}
	if gotEvents >= events {
		t.Fatalf("slow client got all %d events; the queue is not bounded", gotEvents)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	dirs := testDirs(t)
	dirs.Runtime = filepath.Join(dirs.Runtime, strings.Repeat("r", 120))
	err := Run(context.Background(), Options{Dirs: dirs, NoTray: true, Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("err = %v, want a plain word about the socket path", err)
	}
}

func TestStatusSections(t *testing.T) {
	dirs := testDirs(t)
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := config.Open(dirs.ConfigFile())
	env := &Env{Dirs: dirs, Config: cfg, Log: quiet, Reg: NewRegistry(nil)}
	registerCore(env)
	v := int64(7)
	env.Reg.Status(SectionWhitelist, func() any { return protocol.WhitelistStatus{Version: &v, Stale: true} })
	env.Reg.Status(SectionReports, func() any { return map[string]any{"queued": 2, "sent": 1, "failed": 0, "last_error": nil} })
	env.Reg.Status(SectionHub, func() any { return map[string]any{"reachable": false} })
	env.Reg.Status(SectionEnrolled, func() any { return true })
	env.Reg.Status("tokens", func() any { return map[string]int{"stash": 5} })

	res, err := env.Reg.Dispatch(context.Background(), protocol.Request{ID: 1, Type: "status", Raw: []byte(`{"id":1,"type":"status"}`)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	set, _ := protocol.Load()
	if err := set.ValidateResult("status", b); err != nil {
		t.Fatalf("status %s breaks the schema: %v", b, err)
	}
	var st protocol.StatusResult
	json.Unmarshal(b, &st)
	if st.Whitelist.Version == nil || *st.Whitelist.Version != 7 || !st.Whitelist.Stale || st.Reports.Queued != 2 ||
		st.Hub.Reachable == nil || *st.Hub.Reachable || !st.Enrolled {
		t.Fatalf("status = %s", b)
	}
	if !strings.Contains(string(b), `"tokens":{"stash":5}`) {
		t.Fatalf("extra section missing: %s", b)
	}

	res, err = env.Reg.Dispatch(context.Background(), protocol.Request{ID: 2, Type: "hello", Raw: []byte(`{"id":2,"type":"hello","version":1,"browser":"chrome"}`)})
	if err != nil {
		t.Fatal(err)
	}
	h := res.(protocol.HelloResult)
	if h.WhitelistVersion == nil || *h.WhitelistVersion != 7 || !h.WhitelistStale || !h.Enrolled {
		t.Fatalf("hello = %+v", h)
	}
}
