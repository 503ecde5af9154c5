//go:build unix

package relay_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/helper/relay"
	"github.com/detour-project/detour/shared/ids"
	"github.com/detour-project/detour/shared/protocol"
)

// detourBin is the real detour binary, built once for the package's tests.
var detourBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dtbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	detourBin = filepath.Join(dir, "detour")
	build := exec.Command("go", "build", "-o", detourBin, "github.com/detour-project/detour/helper/cmd/detour")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building detour: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	chromeArgs  = []string{ids.ChromeOrigin(ids.ChromeExtensionID)}
	firefoxArgs = []string{"/usr/lib/mozilla/native-messaging-hosts/" + ids.NativeHost + ".json", ids.FirefoxExtensionID}
)

// home is one user's DETOUR_HOME, short enough for a Unix socket path. Its
// cleanup stops the agent that a test's relays started.
func home(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "dt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Stop every agent of this home, not only the lock holder: one that
		// a relay spawned just before it was stopped may still be starting.
		for range 3 {
			stopAgents(d)
			os.RemoveAll(d)
			time.Sleep(100 * time.Millisecond)
		}
	})
	return d
}

func stopAgents(home string) {
	pids := agentsFor(nil, home)
	if pid := agentPID(home); pid > 0 {
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	for _, pid := range pids {
		if !waitGone(pid, 3*time.Second) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// agentPID reads the pid the running agent wrote into its lock file.
func agentPID(home string) int {
	b, _ := os.ReadFile(filepath.Join(home, "run", "agent.lock"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func waitGone(pid int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !alive(pid) || isZombie(pid) {
			return true
		}
	}
	return false
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// agentsFor lists the pids of `detour agent` processes serving home.
func agentsFor(t *testing.T, home string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || isZombie(pid) {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if bytes.Equal(cmd, []byte(detourBin+"\x00agent\x00")) && bytes.Contains(env, []byte("DETOUR_HOME="+home+"\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

// proc is one relay process, driven as a browser drives it.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	frames chan frameOrErr
	stderr *bytes.Buffer
}

type frameOrErr struct {
	msg map[string]any
	err error
}

func startRelay(t testing.TB, home string, args []string, extraEnv ...string) *proc {
	t.Helper()
	cmd := exec.Command(detourBin, args...)
	cmd.Env = append(os.Environ(), "DETOUR_HOME="+home, "DISPLAY=", "WAYLAND_DISPLAY=")
	cmd.Env = append(cmd.Env, extraEnv...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stdin: stdin, frames: make(chan frameOrErr, 100), stderr: new(bytes.Buffer)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := nativemsg.NewReader(stdout)
		for {
			b, err := r.Read()
			if err != nil {
				p.frames <- frameOrErr{err: err}
				close(p.frames)
				return
			}
			var m map[string]any
			err = json.Unmarshal(b, &m)
			p.frames <- frameOrErr{msg: m, err: err}
		}
	}()
	t.Cleanup(func() {
		p.stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

func (p *proc) send(v any) {
	p.t.Helper()
	b, _ := json.Marshal(v)
	p.sendRaw(b)
}

func (p *proc) sendRaw(body []byte) {
	p.t.Helper()
	hdr := binary.NativeEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := p.stdin.Write(append(hdr, body...)); err != nil {
		p.t.Fatalf("write to relay: %v", err)
	}
}

// next returns the next frame, skipping events.
func (p *proc) next(within time.Duration) map[string]any {
	p.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-p.frames:
			if !ok || f.err != nil {
				p.t.Fatalf("relay output ended: %v (stderr: %s)", f.err, p.stderr)
			}
			if _, isEvent := f.msg["data"]; isEvent {
				continue
			}
			return f.msg
		case <-deadline:
			p.t.Fatalf("no reply within %s (stderr: %s)", within, p.stderr)
		}
	}
}

func (p *proc) exitCode(within time.Duration) int {
	p.t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
				p.t.Fatalf("relay died of signal %v", ws.Signal())
			}
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		p.t.Fatalf("relay still running after %s", within)
	}
	return -1
}

func hello(id int) map[string]any {
	return map[string]any{"id": id, "type": "hello", "version": 1, "browser": "test"}
}

func wantOK(t testing.TB, m map[string]any, id float64, typ string) map[string]any {
	t.Helper()
	if m["id"] != id || m["type"] != typ || m["ok"] != true {
		t.Fatalf("reply = %v, want ok %s reply to id %v", m, typ, id)
	}
	res, _ := m["result"].(map[string]any)
	return res
}

func wantError(t testing.TB, m map[string]any, id float64, code float64) {
	t.Helper()
	e, _ := m["error"].(map[string]any)
	if m["id"] != id || m["ok"] != false || e == nil || e["code"] != code {
		t.Fatalf("reply = %v, want error %v for id %v", m, code, id)
	}
}

func TestHelloWithinTwoSeconds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{{"chrome", chromeArgs}, {"firefox", firefoxArgs}} {
		t.Run(tc.name, func(t *testing.T) {
			h := home(t)
			start := time.Now()
			p := startRelay(t, h, tc.args)
			p.send(hello(1))
			res := wantOK(t, p.next(2*time.Second), 1, "hello")
			t.Logf("hello reply after %s, agent started", time.Since(start))
			if res["protocol"] != float64(1) || res["version"] == "" {
				t.Fatalf("hello result = %v", res)
			}
			caps := fmt.Sprint(res["capabilities"])
			for _, c := range []string{"hello", "status", "settings"} {
				if !strings.Contains(caps, c) {
					t.Fatalf("capabilities %s lack %s", caps, c)
				}
			}
		})
	}
}

func TestFramingErrorsKeepTheStream(t *testing.T) {
	h := home(t)
	p := startRelay(t, h, chromeArgs)
	p.send(hello(1))
	wantOK(t, p.next(2*time.Second), 1, "hello")

	p.sendRaw(bytes.Repeat([]byte("x"), 2<<20))
	wantError(t, p.next(2*time.Second), 0, protocol.CodeTooLarge)
	p.send(map[string]any{"id": 2, "type": "status"})
	wantOK(t, p.next(2*time.Second), 2, "status")

	p.stdin.Write([]byte{0, 0, 0, 0})
	wantError(t, p.next(2*time.Second), 0, protocol.CodeZeroLength)
	p.sendRaw([]byte(`not json`))
	wantError(t, p.next(2*time.Second), 0, protocol.CodeMalformed)
	p.send(map[string]any{"id": 3, "type": "frobnicate"})
	wantError(t, p.next(2*time.Second), 3, protocol.CodeUnknownType)
	p.send(map[string]any{"id": 4, "type": "hello", "version": 1, "browser": "netscape"})
	wantError(t, p.next(2*time.Second), 4, protocol.CodeInvalidParams)
	p.send(map[string]any{"id": 5, "type": "hello", "version": 2, "browser": "chrome"})
	wantError(t, p.next(2*time.Second), 5, protocol.CodeBadVersion)
	p.send(hello(6))
	wantOK(t, p.next(2*time.Second), 6, "hello")
}

func TestRefusedCallers(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"unknown chrome extension", []string{"chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"}},
		{"unknown firefox extension", []string{"/tmp/x.json", "evil@example.org"}},
		{"empty chrome origin", []string{"chrome-extension:///"}},
		{"chrome origin with a path", []string{"chrome-extension://" + ids.ChromeExtensionID + "/x?y"}},
		{"firefox id given to chrome form", []string{"chrome-extension://" + ids.FirefoxExtensionID + "x/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := home(t)
			p := startRelay(t, h, tc.args)
			wantError(t, p.next(2*time.Second), 0, protocol.CodeCallerRefused)
			if code := p.exitCode(2 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(p.stderr.String(), "refused") {
				t.Fatalf("stderr does not say why: %q", p.stderr)
			}
			if pid := agentPID(h); pid != 0 {
				t.Fatalf("a refused caller started an agent (pid %d)", pid)
			}
		})
	}
}

func TestDevelopmentExtensionAllowedByEnv(t *testing.T) {
	h := home(t)
	const dev = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	p := startRelay(t, h, []string{ids.ChromeOrigin(dev)}, "DETOUR_ALLOWED_EXTENSIONS= x@example.org , "+dev)
	p.send(hello(1))
	wantOK(t, p.next(2*time.Second), 1, "hello")
}

func TestTwoRelaysAtOnceShareOneAgent(t *testing.T) {
	h := home(t)
	const n = 4
	relays := make([]*proc, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := chromeArgs
			if i%2 == 1 {
				args = firefoxArgs
			}
			p := startRelay(t, h, args)
			mu.Lock()
			relays[i] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i, p := range relays {
		p.send(hello(i + 1))
	}
	for i, p := range relays {
		wantOK(t, p.next(3*time.Second), float64(i+1), "hello")
	}
	// Losing agents exit at once; give them a moment to be reaped.
	var agents []int
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if agents = agentsFor(t, h); len(agents) == 1 {
			break
		}
	}
	if len(agents) != 1 {
		t.Fatalf("agents serving %s: %v, want exactly one", h, agents)
	}
	if pid := agentPID(h); pid != agents[0] {
		t.Fatalf("lock names pid %d, the running agent is %d", pid, agents[0])
	}
	// A setting changed through one relay is seen through another: one state.
	relays[0].send(map[string]any{"id": 10, "type": "settings", "set": map[string]any{"report_automatically": true}})
	wantOK(t, relays[0].next(2*time.Second), 10, "settings")
	relays[1].send(map[string]any{"id": 11, "type": "settings"})
	if res := wantOK(t, relays[1].next(2*time.Second), 11, "settings"); res["report_automatically"] != true {
		t.Fatalf("second relay sees settings %v", res)
	}
}

func TestRelayExitLeavesAgentRunning(t *testing.T) {
	h := home(t)
	p := startRelay(t, h, chromeArgs)
	p.send(hello(1))
	wantOK(t, p.next(2*time.Second), 1, "hello")
	pid := agentPID(h)
	p.stdin.Close()
	if code := p.exitCode(2 * time.Second); code != 0 {
		t.Fatalf("relay exit code on stdin EOF: %d", code)
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(pid) || isZombie(pid) {
		t.Fatalf("agent %d stopped with the relay", pid)
	}
	q := startRelay(t, h, firefoxArgs)
	q.send(hello(1))
	wantOK(t, q.next(2*time.Second), 1, "hello")
	if got := agentPID(h); got != pid {
		t.Fatalf("second relay used agent %d, want the running %d", got, pid)
	}
}

func TestKilledAgentIsReplaced(t *testing.T) {
	h := home(t)
	p := startRelay(t, h, chromeArgs)
	p.send(hello(1))
	wantOK(t, p.next(2*time.Second), 1, "hello")
	first := agentPID(h)
	syscall.Kill(first, syscall.SIGKILL)
	if !waitGone(first, 2*time.Second) {
		t.Fatal("agent did not die")
	}

	// The relay that was connected reconnects to a new agent. A request sent
	// before it noticed the kill is answered with error 10; a retry works.
	p.send(map[string]any{"id": 2, "type": "status"})
	if m := p.next(3 * time.Second); m["ok"] != true {
		wantError(t, m, 2, protocol.CodeAgentDown)
		p.send(map[string]any{"id": 3, "type": "status"})
		wantOK(t, p.next(3*time.Second), 3, "status")
	}
	second := agentPID(h)
	if second == first || !alive(second) {
		t.Fatalf("agent after kill: %d (first %d)", second, first)
	}

	// A new relay after another kill starts a new agent too.
	syscall.Kill(second, syscall.SIGKILL)
	waitGone(second, 2*time.Second)
	q := startRelay(t, h, firefoxArgs)
	q.send(hello(1))
	wantOK(t, q.next(2*time.Second), 1, "hello")
	if third := agentPID(h); third == second || third == first || !alive(third) {
		t.Fatalf("agent after second kill: %d", third)
	}
}

// TestBrowserGoneIsAnError closes the relay's stdout before it replies: the
// write fails with EPIPE and the relay exits instead of dying of SIGPIPE.
func TestBrowserGoneIsAnError(t *testing.T) {
	h := home(t)
	cmd := exec.Command(detourBin, chromeArgs...)
	cmd.Env = append(os.Environ(), "DETOUR_HOME="+h, "DISPLAY=", "WAYLAND_DISPLAY=")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stdout.Close()
	b, _ := json.Marshal(hello(1))
	stdin.Write(append(binary.NativeEndian.AppendUint32(nil, uint32(len(b))), b...))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("relay died of %v", ws.Signal())
		}
		_ = err
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("relay kept running after its stdout closed")
	}
	stdin.Close()
}

func TestCallerID(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{[]string{"chrome-extension://abc/"}, "abc", false},
		{[]string{"chrome-extension://abc/", "--parent-window=0"}, "abc", false},
		{[]string{"chrome-extension://abc"}, "abc", false},
		{[]string{"/x/m.json", "a@b"}, "a@b", false},
		{[]string{"chrome-extension:///"}, "", true},
		{[]string{"chrome-extension://a/b"}, "", true},
		{[]string{"/x/m.json"}, "", true},
		{[]string{"/x/m.json", ""}, "", true},
		{[]string{"status"}, "", true},
		{nil, "", true},
	} {
		got, err := relay.CallerID(tc.args)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("CallerID(%q) = %q, %v; want %q (error %v)", tc.args, got, err, tc.want, tc.wantErr)
		}
	}
}
