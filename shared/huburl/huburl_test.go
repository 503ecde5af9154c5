package huburl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw, want, err string
	}{
		{"https://hub.example.org", "https://hub.example.org", ""},
		{"https://hub.example.org/", "https://hub.example.org", ""},
		{" http://127.0.0.1:8080 ", "http://127.0.0.1:8080", ""},
		{"https://[::1]:8443/detour/", "https://[::1]:8443/detour", ""},
		{"ftp://hub.example", "", "http:// or https://"},
		{"hub.example", "", "http:// or https://"},
		{"http://", "", "no host"},
		{"https://:443", "", "no host"},
		{"https://user:pw@hub.example", "", "password"},
		{"https://hub.example/?x=1", "", "query"},
		{"https://hub.example/?", "", "query"},
		{"https://hub.example/#top", "", "fragment"},
		{"https://hub.example/#", "", "fragment"},
		{"https://hub example", "", "hub URL"},
		{"", "", "http:// or https://"},
	} {
		got, err := Parse(tc.raw)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("Parse(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) = %q, %v; want an error about %q", tc.raw, got, err, tc.err)
		}
	}
}
