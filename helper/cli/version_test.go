package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/version"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runVersion([]string{"--json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var v struct {
		Version  string `json:"version"`
		Protocol int    `json:"protocol"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version != version.Version || v.Protocol != version.Protocol {
		t.Fatalf("version --json = %s (%v)", out.String(), err)
	}
	out.Reset()
	if code := runVersion(nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), version.Version) {
		t.Fatalf("version = %q, exit %d", out.String(), code)
	}
	if code := runVersion([]string{"--bogus"}, &out, &errOut); code != 2 {
		t.Fatalf("unknown flag: exit %d, want 2", code)
	}
}

// The forms a person tries first do what they say and exit 0: --version,
// and --help (or -h) on every subcommand, which prints its usage and flags
// without doing anything.
func TestVersionAndHelpForms(t *testing.T) {
	t.Setenv("DETOUR_HOME", t.TempDir())
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--version"}, []string{"detour " + version.Version}},
		{[]string{"-v"}, []string{"detour " + version.Version}},
		{[]string{"--version", "--json"}, []string{`"version": "` + version.Version}},
		{[]string{"doctor", "--help"}, []string{"usage: detour doctor", "-json"}},
		{[]string{"report", "zoom.us", "-h"}, []string{"usage: detour report", "-need"}},
		{[]string{"--help"}, []string{"usage: detour COMMAND"}},
	} {
		var out, errOut bytes.Buffer
		if code := runArgs(tc.args, &out, &errOut); code != 0 {
			t.Errorf("detour %v: exit %d, want 0 (%s)", tc.args, code, errOut.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("detour %v printed %q, want it to contain %q", tc.args, out.String(), w)
			}
		}
	}
	for name := range commands {
		var out, errOut bytes.Buffer
		if code := runArgs([]string{name, "--help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "usage: detour "+name) || errOut.Len() != 0 {
			t.Errorf("detour %s --help: exit %d, stdout %q, stderr %q", name, code, out.String(), errOut.String())
		}
	}
}

func TestRelayInvocation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"chrome-extension://abc/"}, true},
		{[]string{"/home/u/.mozilla/native-messaging-hosts/org.detour.helper.json", "detour@detour-project.org"}, true},
		{[]string{"version"}, false},
		{[]string{"manifest.json"}, false},
		{[]string{"agent", "--hub"}, false},
	} {
		if got := IsRelayInvocation(tc.args); got != tc.want {
			t.Errorf("IsRelayInvocation(%q) = %v", tc.args, got)
		}
	}
}
