// The cluster tests drive hub processes with Linux process and socket
// facilities (SIGKILL, RLIMIT_NOFILE, IP_BIND_ADDRESS_NO_PORT).

//go:build linux

// Package hubcluster runs detour-server as real processes, as an operator
// would: several hubs on one PostgreSQL database, a hub under a connection
// flood with a small descriptor limit, a hub stopped with SIGTERM.
package hubcluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var bin string // the detour-server built for these tests

func TestMain(m *testing.M) {
	if cfg := os.Getenv(fleetEnv); cfg != "" {
		os.Exit(runFleet(cfg))
	}
	dir, err := os.MkdirTemp("", "detour-hubcluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "detour-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/detour-project/detour/server/cmd/detour-server")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build detour-server: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hubProc is one running `detour-server serve`.
type hubProc struct {
	cmd  *exec.Cmd
	URL  string
	logs *lockedWriter
	done chan error
	urls chan string

	once sync.Once
	end  chan struct{}
	err  error // the process's exit, once end is closed
}

// startHub starts serve with args on a free loopback port and waits for
// it to listen. With nofile > 0 it runs under that descriptor limit (soft
// and hard, so the Go runtime cannot raise it).
func startHub(t testing.TB, nofile int, args ...string) *hubProc {
	t.Helper()
	p := launch(t, nofile, args...)
	p.wait(t)
	return p
}

// launch starts a hub without waiting for it (several hubs start at the
// same moment); wait then waits for its "listening on" line.
func launch(t testing.TB, nofile int, args ...string) *hubProc {
	t.Helper()
	argv := append([]string{bin, "serve", "--addr", "127.0.0.1:0"}, args...)
	var cmd *exec.Cmd
	if nofile > 0 {
		cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$@"`, nofile), "sh"}, argv...)...)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedWriter{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &hubProc{cmd: cmd, logs: logs, done: make(chan error, 1), urls: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`listening on (http://\S+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				p.urls <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited()
		if t.Failed() {
			t.Logf("hub log:\n%s", tail(logs.String(), 3000))
		}
	})
	return p
}

func (p *hubProc) wait(t testing.TB) {
	t.Helper()
	select {
	case p.URL = <-p.urls:
	case <-p.exited():
		t.Fatalf("hub exited at start: %v\n%s", p.err, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("hub did not start within 60 s\n%s", p.logs.String())
	}
}

// exited is closed when the process has ended (its Wait result in err).
func (p *hubProc) exited() <-chan struct{} {
	p.once.Do(func() {
		p.end = make(chan struct{})
		go func() { p.err = <-p.done; close(p.end) }()
	})
	return p.end
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// lockedWriter collects a process's log; the test reads it while the
// process writes.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// admin runs `detour-server admin args...`.
func admin(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"admin"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("admin %v: %v\n%s", args, err, out)
	}
	return string(out)
}

var client = &http.Client{Timeout: 15 * time.Second}

func fetch(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
