package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/version"
)

// version, --version and --help do what they say and exit 0.
func TestVersionAndHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"version"}, "detour-server " + version.Version},
		{[]string{"--version"}, "detour-server " + version.Version},
		{[]string{"serve", "--help"}, "-addr"},
		{[]string{"admin", "-h"}, "enrol-code create"},
		{[]string{"--help"}, "detour-server serve"},
	} {
		var out, errb bytes.Buffer
		if code := Main(tc.args, &out, &errb); code != 0 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("detour-server %v: exit %d, output %q (stderr %q), want 0 and %q", tc.args, code, out.String(), errb.String(), tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"version", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("version --json: exit %d: %s", code, errb.String())
	}
	var v struct {
		Version  string `json:"version"`
		Protocol int    `json:"protocol"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version != version.Version || v.Protocol != version.Protocol {
		t.Fatalf("version --json = %s (%v)", out.String(), err)
	}
	if code := Main([]string{"version", "--bogus"}, &out, &errb); code != 2 {
		t.Fatalf("version --bogus: exit %d, want 2", code)
	}
}
