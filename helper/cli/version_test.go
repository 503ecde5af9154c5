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
