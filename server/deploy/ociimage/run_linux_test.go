package ociimage

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImageRuns builds the image from the real static hub (bin/detour-server,
// from make build) and the real Containerfile, then uses it as a container
// engine would, with the engines' own tools: skopeo reads it and copies it to
// a docker archive, umoci unpacks it into a runtime bundle, and runc runs it
// in new namespaces, its own network namespace holding only loopback (no
// address outside the test's namespace is ever bound). The hub inside answers
// /readyz and a signed whitelist on its entrypoint's address, runs as the
// image's non-root user, and stops cleanly on SIGTERM.
//
// It needs root and Debian's skopeo, umoci and runc (scripts/deps.sh), so it
// runs where scripts/test.sh sets DETOUR_TEST_IMAGE=1 (as does
// TestImageRunsInPodman).
func TestImageRuns(t *testing.T) {
	work, archive := buildImage(t, "skopeo", "umoci", "runc", "nsenter", "curl")

	var inspect struct {
		Architecture, Os string
		Env              []string
	}
	if err := json.Unmarshal([]byte(run(t, "skopeo", "inspect", "oci-archive:"+archive)), &inspect); err != nil {
		t.Fatal(err)
	}
	if inspect.Architecture != runtime.GOARCH || inspect.Os != "linux" || !strings.Contains(strings.Join(inspect.Env, " "), "DETOUR_LOG_FORMAT=json") {
		t.Fatalf("skopeo inspect: %+v", inspect)
	}
	run(t, "skopeo", "copy", "--quiet", "oci-archive:"+archive, "docker-archive:"+filepath.Join(work, "docker.tar")+":detour-server:test")

	layout := filepath.Join(work, "layout")
	os.Mkdir(layout, 0o755)
	run(t, "tar", "-xf", archive, "-C", layout)
	bundle := filepath.Join(work, "bundle")
	run(t, "umoci", "unpack", "--image", layout+":test", bundle)
	entries, _ := os.ReadDir(filepath.Join(bundle, "rootfs"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "data detour-server" {
		t.Fatalf("the image's root holds %v (no shell, nothing else)", names)
	}

	// The cluster's master key, mounted as a secret where the image's
	// DETOUR_MASTER_KEY_FILE says; the database is SQLite in /data.
	key := filepath.Join(work, "master.key")
	os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o644)
	cfgPath := filepath.Join(bundle, "config.json")
	var spec map[string]any
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	spec["mounts"] = append(spec["mounts"].([]any), map[string]any{
		"destination": "/run/secrets/detour-master-key", "type": "bind", "source": key, "options": []string{"rbind", "ro"},
	})
	b, _ = json.Marshal(spec)
	os.WriteFile(cfgPath, b, 0o644)

	id := fmt.Sprintf("detour-image-test-%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runc", "run", "--bundle", bundle, id)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("runc", "delete", "--force", id).Run() })
	var pid int
	var ready string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var st struct {
			Pid    int
			Status string
		}
		out, err := exec.Command("runc", "state", id).Output()
		if err != nil || json.Unmarshal(out, &st) != nil || st.Status != "running" {
			continue
		}
		pid = st.Pid
		out, err = getInside(pid, "/readyz")
		if err == nil {
			ready = string(out)
			break
		}
	}
	if ready == "" {
		t.Fatalf("the hub in the container never answered /readyz:\n%s", logs.String())
	}
	if !strings.Contains(ready, `"status":"ready"`) {
		t.Fatalf("readyz: %s", ready)
	}
	checkServing(t, pid)

	run(t, "runc", "kill", id, "TERM")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the hub did not stop cleanly on SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the hub did not stop within 30 s of SIGTERM:\n%s", logs.String())
	}
	checkStopLog(t, logs.String())
}

// buildImage builds the image as make dist does, from the real static hub
// (bin/detour-server, from make build) and the real Containerfile, into an
// archive in a temporary folder, and returns both. It skips the test unless
// DETOUR_TEST_IMAGE is set, and fails it if a tool the test uses is missing.
func buildImage(t *testing.T, tools ...string) (work, archive string) {
	t.Helper()
	if os.Getenv("DETOUR_TEST_IMAGE") == "" {
		t.Skip("DETOUR_TEST_IMAGE is not set (scripts/test.sh sets it)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: scripts/deps.sh installs it", tool)
		}
	}
	bin, err := filepath.Abs("../../../bin/detour-server")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no %s: run make build first", bin)
	}
	work = t.TempDir()
	ctxDir := filepath.Join(work, "context")
	os.MkdirAll(filepath.Join(ctxDir, "bin"), 0o755)
	os.MkdirAll(filepath.Join(ctxDir, "server/deploy"), 0o755)
	run(t, "cp", bin, filepath.Join(ctxDir, "bin/detour-server"))
	run(t, "cp", "../data.keep", filepath.Join(ctxDir, "server/deploy/data.keep"))
	archive = filepath.Join(work, "image.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := Build(f, parseFile(t), ctxDir, Options{Name: "detour-server", Tag: "test", Arch: runtime.GOARCH, Created: time.Unix(0, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return work, archive
}

// TestImageRunsInPodman loads the archive make dist ships into a real
// container engine, Debian's podman, as an operator would (`podman load`),
// and runs it unchanged, its entrypoint and user the image's own, with the
// master key mounted where the image expects it and no network but the
// container's own loopback (--network none: nothing is bound outside the
// namespace podman made for the test). The hub answers /readyz, /healthz
// and a signed whitelist, runs as 65532, and `podman stop` (SIGTERM) ends it
// with status 0 after its JSON draining and stopped lines. Podman keeps its
// images and containers in the test's temporary folder (--root, --runroot),
// so the machine's own store is never touched.
func TestImageRunsInPodman(t *testing.T) {
	work, archive := buildImage(t, "podman", "nsenter", "curl")
	podman := func(args ...string) (string, error) {
		base := []string{"--root", filepath.Join(work, "storage"), "--runroot", filepath.Join(work, "run"),
			"--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager", "cgroupfs"}
		out, err := exec.Command("podman", append(base, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := podman(args...)
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out := must("load", "--input", archive); !strings.Contains(out, "localhost/detour-server:test") {
		t.Fatalf("podman load names no localhost/detour-server:test:\n%s", out)
	}
	key := filepath.Join(work, "master.key")
	os.WriteFile(key, []byte("0123456789abcdef0123456789abcdef"), 0o644)
	name := fmt.Sprintf("detour-image-podman-%d", os.Getpid())
	t.Cleanup(func() { podman("rm", "--force", "--time", "0", name) })
	// podman asks by default for descriptor and process limits above this
	// machine's hard limits, which runc is refused ("error setting rlimit
	// type 7"); a hub of one test needs few.
	must("run", "--detach", "--name", name, "--network", "none",
		"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
		"--volume", key+":/run/secrets/detour-master-key:ro", "localhost/detour-server:test")
	pid, err := strconv.Atoi(must("inspect", "--format", "{{.State.Pid}}", name))
	if err != nil || pid <= 0 {
		t.Fatalf("podman inspect: pid %d: %v", pid, err)
	}
	var ready []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ready, err = getInside(pid, "/readyz"); err == nil {
			break
		}
	}
	if !strings.Contains(string(ready), `"status":"ready"`) {
		logs, _ := podman("logs", name)
		t.Fatalf("the hub in podman never answered /readyz (%v %q):\n%s", err, ready, logs)
	}
	checkServing(t, pid)
	must("stop", "--time", "30", name)
	if code := must("inspect", "--format", "{{.State.ExitCode}}", name); code != "0" {
		logs, _ := podman("logs", name)
		t.Fatalf("the hub stopped by podman exited %s, not 0:\n%s", code, logs)
	}
	checkStopLog(t, must("logs", name))
}

// checkServing checks the ready hub in the container with pid: it answers
// /healthz and a signed whitelist, and runs as the image's user.
func checkServing(t *testing.T, pid int) {
	t.Helper()
	if health, err := getInside(pid, "/healthz"); err != nil || string(health) != "ok\n" {
		t.Fatalf("healthz from the container: %v %q", err, health)
	}
	if wl, err := getInside(pid, "/api/v1/whitelist"); err != nil || !strings.Contains(string(wl), `"signatures"`) {
		t.Fatalf("whitelist from the container: %v %.200s", err, wl)
	}
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if !strings.Contains(string(status), "\nUid:\t65532\t65532\t65532\t65532\n") {
		t.Fatalf("the hub does not run as the image's user 65532:\n%s", status)
	}
}

// checkStopLog checks a stopped hub's JSON log: it listened, drained and
// stopped.
func checkStopLog(t *testing.T, logs string) {
	t.Helper()
	for _, want := range []string{`"msg":"listening"`, `"msg":"draining"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the container's JSON log has no %s:\n%s", want, logs)
		}
	}
}

// getInside fetches path from the hub in the container with pid, from inside
// its own network namespace: the entrypoint's 0.0.0.0:8080 there is that
// namespace's loopback alone. curl -f makes any status but 2xx an error.
func getInside(pid int, path string) ([]byte, error) {
	return exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "curl", "-sf", "http://127.0.0.1:8080"+path).Output()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
