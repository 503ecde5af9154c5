package sysproxy

import (
	"net/url"
	"testing"
)

func TestParseList(t *testing.T) {
	for _, tc := range []struct{ list, scheme, want string }{
		{"proxy.corp:8080", "https", "http://proxy.corp:8080"},
		{"http=h1:80;https=h2:443", "https", "http://h2:443"},
		{"http=h1:80;https=h2:443", "http", "http://h1:80"},
		{"http=h1:80 ftp=f:21", "https", ""},
		{"PROXY p1:3128; PROXY p2:3128; DIRECT", "https", "http://p1:3128"},
		{"DIRECT", "https", ""},
		{"", "https", ""},
		{"https=", "https", ""},
	} {
		got := ParseList(tc.list, tc.scheme)
		s := ""
		if got != nil {
			s = got.String()
		}
		if s != tc.want {
			t.Errorf("ParseList(%q, %s) = %q, want %q", tc.list, tc.scheme, s, tc.want)
		}
	}
}

func TestBypassed(t *testing.T) {
	const list = "*.corp.example;intranet;<local>;10.*"
	for host, want := range map[string]bool{
		"wiki.corp.example": true, "corp.example": false, "intranet": true, "printer": true,
		"127.0.0.1": true, "10.1.2.3": true, "docs.google.com": false, "intranet.example": false,
		"wiki.corp.example:443": true,
	} {
		if got := Bypassed(list, host); got != want {
			t.Errorf("Bypassed(%q) = %v, want %v", host, got, want)
		}
	}
}

// The environment wins; without it the system's answer is used and cached.
func TestForURL(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(k, "")
	}
	calls := 0
	system = func(u *url.URL) (*url.URL, error) { calls++; return url.Parse("http://sys.proxy:8080") }
	t.Cleanup(func() { system = platformProxy; cache = map[string]cached{} })
	u, _ := url.Parse("https://docs.google.com/x")
	for i := 0; i < 2; i++ {
		p, err := ForURL(u)
		if err != nil || p == nil || p.Host != "sys.proxy:8080" {
			t.Fatalf("system proxy: %v %v", p, err)
		}
	}
	if calls != 1 {
		t.Fatalf("system asked %d times for one host, want 1 (cached)", calls)
	}
	t.Setenv("HTTPS_PROXY", "http://env.proxy:3128")
	if p, err := ForURL(u); err != nil || p == nil || p.Host != "env.proxy:3128" {
		t.Fatalf("environment proxy: %v %v", p, err)
	}
}
