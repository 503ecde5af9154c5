//go:build unix

package agent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/nativemsg"
	"github.com/detour-project/detour/shared/ids"
	"github.com/detour-project/detour/shared/protocol"
)

// BenchmarkHelloRoundTrip sends hello through the real relay binary (stdin
// and stdout, as a browser does) to a real agent process and reads the
// reply, beside the same hello dispatched in-process through a Registry (the
// baseline, measured in the same process). The ratio is the cost of two
// processes, two pipes and the socket.
func BenchmarkHelloRoundTrip(b *testing.B) {
	directNs := directHelloNs(b)

	bin := filepath.Join(b.TempDir(), "detour")
	build := exec.Command("go", "build", "-o", bin, "github.com/detour-project/detour/helper/cmd/detour")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	home, err := os.MkdirTemp("", "dt")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(home)
	cmd := exec.Command(bin, ids.ChromeOrigin(ids.ChromeExtensionID))
	cmd.Env = append(os.Environ(), "DETOUR_HOME="+home, "DISPLAY=", "WAYLAND_DISPLAY=")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
		lock, _ := os.ReadFile(filepath.Join(home, "run", "agent.lock"))
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(lock))); pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	body := []byte(`{"id":1,"type":"hello","version":1,"browser":"test"}`)
	frame := append(binary.NativeEndian.AppendUint32(nil, uint32(len(body))), body...)
	r := nativemsg.NewReader(stdout)
	roundTrip := func() {
		if _, err := stdin.Write(frame); err != nil {
			b.Fatal(err)
		}
		rep, err := r.Read()
		if err != nil || !strings.Contains(string(rep), `"ok":true`) {
			b.Fatalf("hello reply %s: %v", rep, err)
		}
	}
	roundTrip() // starts the agent; not part of the measurement
	b.ResetTimer()
	for b.Loop() {
		roundTrip()
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/1e3, "µs/hello-relay")
	b.ReportMetric(directNs/1e3, "µs/hello-direct")
	b.ReportMetric(perOp/directNs, "x-direct")
}

// directHelloNs times hello dispatched in-process, with the same core
// handlers and schema validation path the agent uses, without any I/O.
func directHelloNs(b *testing.B) float64 {
	dirs := testDirs(b)
	if err := dirs.Ensure(); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		b.Fatal(err)
	}
	env := &Env{Dirs: dirs, Config: cfg, Log: quiet, Reg: NewRegistry(nil)}
	registerCore(env)
	req, err := protocol.ParseRequest([]byte(`{"id":1,"type":"hello","version":1,"browser":"test"}`))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	n, start := 0, time.Now()
	for time.Since(start) < 300*time.Millisecond {
		res, err := env.Reg.Dispatch(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(protocol.Reply{ID: req.ID, Type: req.Type, OK: true, Result: res}); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
