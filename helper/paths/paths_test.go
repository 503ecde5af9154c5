package paths

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFor(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		goos string
		env  map[string]string
		want Dirs
		log  string
	}{
		{name: "linux defaults", goos: "linux", env: map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"},
			want: Dirs{Config: "/home/ann/.config/detour", State: "/home/ann/.local/state/detour", Runtime: "/run/user/1000/detour"},
			log:  "/home/ann/.local/state/detour/agent.log"},
		{name: "linux XDG set", goos: "linux", env: map[string]string{"XDG_CONFIG_HOME": "/c", "XDG_STATE_HOME": "/s", "XDG_RUNTIME_DIR": "/r"},
			want: Dirs{Config: "/c/detour", State: "/s/detour", Runtime: "/r/detour"}, log: "/s/detour/agent.log"},
		{name: "linux without a runtime folder", goos: "linux",
			want: Dirs{Config: "/home/ann/.config/detour", State: "/home/ann/.local/state/detour", Runtime: "/tmp/x/detour-1000"},
			log:  "/home/ann/.local/state/detour/agent.log"},
		{name: "macOS", goos: "darwin", env: map[string]string{"XDG_CONFIG_HOME": "/ignored", "XDG_RUNTIME_DIR": "/ignored"},
			want: Dirs{
				Config:  "/home/ann/Library/Application Support/Detour",
				State:   "/home/ann/Library/Application Support/Detour/State",
				Runtime: "/tmp/x/detour-1000",
				Logs:    "/home/ann/Library/Logs/Detour",
			},
			log: "/home/ann/Library/Logs/Detour/agent.log"},
		{name: "Windows", goos: "windows", env: map[string]string{"LOCALAPPDATA": "/users/ann/AppData/Local", "XDG_CONFIG_HOME": "/ignored"},
			want: Dirs{Config: "/users/ann/AppData/Local/Detour", State: "/users/ann/AppData/Local/Detour/state", Runtime: "/users/ann/AppData/Local/Detour/run"},
			log:  "/users/ann/AppData/Local/Detour/state/agent.log"},
		{name: "Windows without LOCALAPPDATA", goos: "windows",
			want: Dirs{Config: "/home/ann/AppData/Local/Detour", State: "/home/ann/AppData/Local/Detour/state", Runtime: "/home/ann/AppData/Local/Detour/run"},
			log:  "/home/ann/AppData/Local/Detour/state/agent.log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := For(tc.goos, "/home/ann", env(tc.env), "/tmp/x", 1000)
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if got.Log() != tc.log {
				t.Fatalf("log %s, want %s", got.Log(), tc.log)
			}
		})
	}
}

// Ensure makes the logs folder too, private like the rest.
func TestEnsureMakesLogs(t *testing.T) {
	d := t.TempDir()
	dirs := Dirs{Config: filepath.Join(d, "c"), State: filepath.Join(d, "s"), Runtime: filepath.Join(d, "r"), Logs: filepath.Join(d, "l")}
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dirs.Logs)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("logs folder %v %v", fi, err)
	}
}
