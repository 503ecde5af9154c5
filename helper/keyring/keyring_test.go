package keyring

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/statefile"
)

// childEnv marks a test binary that this TestMain re-executed inside its own
// D-Bus session, so that it never re-executes again.
const childEnv = "DETOUR_KEYRING_TEST_SESSION"

// TestMain makes sure the tests talk to a real Secret Service of their own:
// the binary re-executes itself inside a private D-Bus session with a fresh,
// unlocked gnome-keyring (its keyrings in a temporary XDG_DATA_HOME). So the
// tests never skip for want of a keyring, never write into a desktop user's
// own keyring, and never depend on the password of a login keyring that is
// already there (`make test`'s session unlocks one with its own password).
func TestMain(m *testing.M) {
	if state := os.Getenv(helperEnv); state != "" {
		helperOpen(state)
		os.Exit(0)
	}
	if os.Getenv(childEnv) == "" {
		os.Exit(reexecInSession())
	}
	os.Exit(m.Run())
}

func reexecInSession() int {
	data, err := os.MkdirTemp("", "detour-keyring-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyring test:", err)
		return 1
	}
	defer os.RemoveAll(data)
	script := `echo -n detour-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; exec "$0" "$@"`
	cmd := exec.Command("dbus-run-session", append([]string{"--", "sh", "-c", script, os.Args[0]}, os.Args[1:]...)...)
	// gnome-keyring keeps its login keyring under XDG_DATA_HOME: a fresh one.
	cmd.Env = append(os.Environ(), childEnv+"=1", "XDG_DATA_HOME="+data)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "keyring test: cannot start a D-Bus session with gnome-keyring:", err)
		return 1
	}
	return 0
}

func testDirs(t *testing.T) paths.Dirs {
	t.Helper()
	d := t.TempDir()
	return paths.Dirs{Config: filepath.Join(d, "config"), State: filepath.Join(d, "state"), Runtime: filepath.Join(d, "run")}
}

func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("test-%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
}

func TestSecretServiceRoundTrip(t *testing.T) {
	s, err := Open(testDirs(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Backend() != "secret-service" {
		t.Fatalf("backend = %q (%v), want secret-service: the tests must run against a real Secret Service", s.Backend(), Unavailable(s))
	}
	if err := Unavailable(s); err != nil {
		t.Fatalf("Unavailable = %v, want nil", err)
	}
	if d := Diagnose(testDirs(t)); d.Backend != "secret-service" || d.Problem != "" || d.FallbackFile != "" {
		t.Fatalf("Diagnose = %+v", d)
	}
	key := uniqueKey(t)
	t.Cleanup(func() { s.Delete(key) })

	if _, err := s.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Set: %v, want ErrNotFound", err)
	}
	for _, v := range []string{"first credential", "second: ünïcode & \"quotes\""} {
		if err := s.Set(key, v); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(key)
		if err != nil || got != v {
			t.Fatalf("Get = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.Delete(key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(key); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

// An old fallback file is moved into the keyring once the keyring answers.
func TestOpenMovesFallbackFileIntoKeyring(t *testing.T) {
	dirs := testDirs(t)
	key := uniqueKey(t)
	fs := NewFileStore(filepath.Join(dirs.State, FileName))
	if err := fs.Set(key, "from-the-file"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dirs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Delete(key) })
	if s.Backend() != "secret-service" {
		t.Fatalf("backend = %q (%v)", s.Backend(), Unavailable(s))
	}
	if got, err := s.Get(key); err != nil || got != "from-the-file" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if _, err := os.Stat(fs.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fallback file still there after moving: %v", err)
	}
}

// helperEnv makes the test binary act as a child process that opens the
// keyring and prints what it got.
const helperEnv = "DETOUR_KEYRING_HELPER_STATE"

func helperOpen(state string) {
	s, err := Open(paths.Dirs{State: state})
	if err != nil {
		fmt.Printf("error=%v\n", err)
		return
	}
	if err := s.Set("credential", "c1"); err != nil {
		fmt.Printf("error=%v\n", err)
		return
	}
	fmt.Printf("backend=%s\nreason=%v\n", s.Backend(), Unavailable(s))
	d := Diagnose(paths.Dirs{State: state})
	fmt.Printf("diagnose=%s file=%t\n", d.Backend, d.FallbackFile != "" && d.Problem != "")
}

// With a session bus that does not exist, Open says so and falls back to the
// file. It runs in a child process because go-keyring holds one shared D-Bus
// connection per process.
func TestNoSecretServiceFallsBackToFile(t *testing.T) {
	state := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		helperEnv+"="+state,
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(state, "no-bus"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "backend=file") || !strings.Contains(string(out), "no usable secret-service") ||
		!strings.Contains(string(out), "diagnose=file file=true") {
		t.Fatalf("child output does not show the file fallback with its reason:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(state, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("fallback file mode %v, want 0600", fi.Mode().Perm())
	}
}

// blocking never answers, like a locked keyring waiting on a prompt.
type blocking struct{ release chan struct{} }

func (b blocking) Get(string, string) (string, error) { <-b.release; return "", nil }
func (b blocking) Set(string, string, string) error   { <-b.release; return nil }
func (b blocking) Delete(string, string) error        { <-b.release; return nil }

func TestLockedKeyringTimesOutAndFallsBack(t *testing.T) {
	b := blocking{release: make(chan struct{})}
	defer close(b.release)
	start := time.Now()
	s, err := open(testDirs(t), options{provider: b, service: "detour-test", timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Open took %v with a blocked keyring", el)
	}
	if s.Backend() != "file" || !errors.Is(Unavailable(s), ErrTimeout) {
		t.Fatalf("backend %q, reason %v; want file with ErrTimeout", s.Backend(), Unavailable(s))
	}
	ks := &osStore{p: b, service: "detour-test", timeout: 50 * time.Millisecond}
	if _, err := ks.Get("k"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Get: %v, want ErrTimeout", err)
	}
	if err := ks.Set("k", "v"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Set: %v, want ErrTimeout", err)
	}
}

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", FileName)
	f := NewFileStore(path)
	steps := []struct {
		op, key, val string
		want         string
		wantErr      error
	}{
		{op: "get", key: "a", wantErr: ErrNotFound},
		{op: "set", key: "a", val: "1"},
		{op: "set", key: "b", val: "two\nlines"},
		{op: "get", key: "a", want: "1"},
		{op: "set", key: "a", val: "3"},
		{op: "get", key: "a", want: "3"},
		{op: "get", key: "b", want: "two\nlines"},
		{op: "delete", key: "a"},
		{op: "get", key: "a", wantErr: ErrNotFound},
		{op: "delete", key: "missing"},
		{op: "get", key: "b", want: "two\nlines"},
	}
	for i, s := range steps {
		var got string
		var err error
		switch s.op {
		case "get":
			got, err = f.Get(s.key)
		case "set":
			err = f.Set(s.key, s.val)
		case "delete":
			err = f.Delete(s.key)
		}
		if s.wantErr != nil {
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("step %d %s %s: err %v, want %v", i, s.op, s.key, err, s.wantErr)
			}
			continue
		}
		if err != nil || got != s.want {
			t.Fatalf("step %d %s %s: %q, %v; want %q", i, s.op, s.key, got, err, s.want)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o600 {
			t.Fatalf("step %d: mode %v, want 0600", i, fi.Mode().Perm())
		}
	}
	// Atomic writes leave no temporary files beside the store.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("files beside the store: %v", ents)
	}
	// Deleting the last secret removes the file.
	if err := f.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file still there after the last delete: %v", err)
	}
}

func TestFileStoreConcurrentWriters(t *testing.T) {
	f := NewFileStore(filepath.Join(t.TempDir(), FileName))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Set(fmt.Sprint("k", i), fmt.Sprint(i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 20 {
		if v, err := f.Get(fmt.Sprint("k", i)); err != nil || v != fmt.Sprint(i) {
			t.Fatalf("k%d = %q, %v", i, v, err)
		}
	}
}

func TestFileStoreTightensLoosePermissionsAndRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.json")
	if err := os.WriteFile(loose, []byte(`{"a":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := NewFileStore(loose).Get("a"); err != nil || v != "1" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if fi, _ := os.Stat(loose); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after use, want 0600", fi.Mode().Perm())
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{not json`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewFileStore(bad).Set("a", "1"); err == nil {
		t.Fatal("Set on a corrupt file succeeded; it would have lost what was there")
	}
	if b, _ := os.ReadFile(bad); string(b) != `{not json` {
		t.Fatalf("corrupt file was overwritten: %q", b)
	}
}

// Without any session bus, Open says so and does not start one.
func TestNoSessionBusSaysSo(t *testing.T) {
	state := t.TempDir()
	cmd := exec.Command(os.Args[0])
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DBUS_SESSION_BUS_ADDRESS=") && !strings.HasPrefix(e, "XDG_RUNTIME_DIR=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, helperEnv+"="+state, childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "backend=file") || !strings.Contains(string(out), "no D-Bus session bus") {
		t.Fatalf("child output:\n%s", out)
	}
}

// mapKeyring is an in-memory provider whose Set can be made to fail.
type mapKeyring struct {
	mu      sync.Mutex
	m       map[string]string
	failSet error
}

func (k *mapKeyring) Get(s, u string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[s+"/"+u]
	if !ok {
		return "", gokeyring.ErrNotFound
	}
	return v, nil
}

func (k *mapKeyring) Set(s, u, p string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failSet != nil {
		return k.failSet
	}
	k.m[s+"/"+u] = p
	return nil
}

func (k *mapKeyring) Delete(s, u string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, s+"/"+u)
	return nil
}

// Moving an old fallback file into the keyring never loses a secret: when
// the keyring refuses them the file stays in use; a corrupt file (nothing to
// keep) does not stop the keyring from being used, and doctor sees it.
func TestOpenWithOldFallbackFile(t *testing.T) {
	cases := []struct {
		name       string
		file       string
		failSet    error
		wantOS     bool // the OS keyring is used, not the file
		wantFile   bool // doctor sees a fallback file
		wantSecret string
	}{
		{name: "moved", file: `{"credential":"c1"}`, wantOS: true, wantSecret: "c1"},
		{name: "keyring refuses", file: `{"credential":"c1"}`, failSet: errors.New("read-only collection"), wantFile: true, wantSecret: "c1"},
		{name: "corrupt file", file: `{"credential":`, wantOS: true, wantFile: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dirs := testDirs(t)
			path := filepath.Join(dirs.State, FileName)
			os.MkdirAll(dirs.State, 0o700)
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			k := &mapKeyring{m: map[string]string{}, failSet: c.failSet}
			o := options{provider: k, service: "detour-test", timeout: time.Second}
			s, err := open(dirs, o)
			if err != nil {
				t.Fatal(err)
			}
			if (Unavailable(s) == nil) != c.wantOS || (s.Backend() == "file") == c.wantOS {
				t.Fatalf("backend %q (%v), want the OS keyring: %t", s.Backend(), Unavailable(s), c.wantOS)
			}
			if c.wantSecret != "" {
				if v, err := s.Get("credential"); err != nil || v != c.wantSecret {
					t.Fatalf("credential = %q, %v", v, err)
				}
			}
			if d := diagnose(dirs, o); (d.FallbackFile != "") != c.wantFile {
				t.Fatalf("diagnose %+v, want fallback file reported: %t", d, c.wantFile)
			}
		})
	}
}

// A secrets file from before schema versions still reads; a write stamps
// the schema; a file from a newer Detour is refused, not overwritten.
func TestFileStoreSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(path, []byte(`{"device:hub":"secret"}`), 0o600)
	f := NewFileStore(path)
	if v, err := f.Get("device:hub"); err != nil || v != "secret" {
		t.Fatalf("old file: %q, %v", v, err)
	}
	if err := f.Set("other", "x"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"schema": 1`) {
		t.Fatalf("written %s", b)
	}
	if v, err := f.Get("device:hub"); err != nil || v != "secret" {
		t.Fatalf("after write: %q, %v", v, err)
	}
	newer := []byte(`{"schema":7,"device:hub":"secret"}`)
	os.WriteFile(path, newer, 0o600)
	if err := f.Set("other", "y"); !errors.Is(err, statefile.ErrNewer) {
		t.Fatalf("set over a newer file: %v, want ErrNewer", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(newer) {
		t.Fatalf("newer file changed to %s", b)
	}
}
