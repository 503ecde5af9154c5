package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestPublicURLIsChecked(t *testing.T) {
	cases := []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"https://hub.example.org", true},
		{"https://hub.example.org/", true},
		{"http://127.0.0.1:8080", true},
		{"hub.example.org", false},
		{"ftp://hub.example.org", false},
		{"https://", false},
		{"https://hub.example.org/detour", false},
	}
	for _, c := range cases {
		if err := checkPublicURL(c.url); (err == nil) != c.ok {
			t.Errorf("checkPublicURL(%q) = %v, want ok=%v", c.url, err, c.ok)
		}
	}
	// A bad value stops serve before it opens anything.
	var out, errb bytes.Buffer
	code := Main([]string{"serve", "--data", t.TempDir(), "--public-url", "hub.example.org"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "--public-url") {
		t.Fatalf("serve with a bad --public-url: exit %d, stderr %q", code, errb.String())
	}
}
