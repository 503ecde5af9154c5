package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/detour-project/detour/test/testnet"
)

// TestProbeCommand runs `detour probe` in-process against the loopback test
// network: --json prints exactly the contract's fields, with the right
// verdict, and the human form reads as a verdict.
func TestProbeCommand(t *testing.T) {
	t.Setenv("DETOUR_HOME", t.TempDir())
	for _, k := range []string{"DETOUR_PROBE_DNS", "DETOUR_PROBE_CONNECT_TO", "DETOUR_PROBE_CA_FILE", "DETOUR_PROBE_PROXY",
		"DETOUR_PROBE_CAPTIVE_URL", "DETOUR_PROBE_PUBLIC_CA_FILE", "DETOUR_PROBE_SECOND_DNS", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"} {
		t.Setenv(k, "")
	}
	n, err := testnet.Start(testnet.Options{Aliases: map[string]string{"docs.google.com": "blockpage-forcepoint", "zoom.us": "site-503"}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_, httpsPort, _ := net.SplitHostPort(n.HTTPS)

	cases := []struct {
		name    string
		args    []string
		service any
		blocked bool
		method  string
		vendor  any
	}{
		{"umbrella sinkhole", scenarioArgs(t, n, "dns-umbrella"), nil, true, "dns-sinkhole", "Cisco Umbrella"},
		{"proxy refused", scenarioArgs(t, n, "proxy-refused"), nil, true, "proxy-refused", "Squid"},
		{"cdn challenge", scenarioArgs(t, n, "lookalike-cloudflare-challenge"), nil, false, "reachable", nil},
		{"catalog host via --connect-to, flags before the URL", []string{"--connect-to", "docs.google.com:443:127.0.0.1:" + httpsPort,
			"--public-ca-file", n.PublicCAFile, "--captive-url", n.OnlineURL, "--timeout", "5s", "https://docs.google.com/a/secret?q=1"},
			"google-docs", true, "http-blockpage", "Forcepoint"},
		{"catalog site down", []string{"https://zoom.us/", "--connect-to", "zoom.us:443:127.0.0.1:" + httpsPort,
			"--public-ca-file", n.PublicCAFile, "--captive-url", n.OnlineURL}, "zoom", false, "site-down", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runProbe(append(c.args, "--json"), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var got map[string]any
			dec := json.NewDecoder(&out)
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out.String())
			}
			if dec.More() {
				t.Fatal("more than one JSON value printed")
			}
			want := []string{"url", "host", "service", "blocked", "possible", "method", "vendor", "confidence", "evidence", "facts", "elapsed_ms"}
			if len(got) != len(want) {
				t.Errorf("fields %v, want exactly %v", keys(got), want)
			}
			for _, k := range want {
				if _, ok := got[k]; !ok {
					t.Errorf("missing field %q", k)
				}
			}
			if facts, _ := got["facts"].([]any); len(facts) != len(got["evidence"].([]any)) {
				t.Errorf("%d facts for %d evidence sentences", len(facts), len(got["evidence"].([]any)))
			}
			if c.service != nil && got["service"] != c.service {
				t.Errorf("service = %v, want %v", got["service"], c.service)
			}
			if got["blocked"] != c.blocked || got["method"] != c.method || got["vendor"] != c.vendor {
				t.Errorf("got blocked=%v method=%v vendor=%v, want %v %v %v; evidence %v", got["blocked"], got["method"], got["vendor"],
					c.blocked, c.method, c.vendor, got["evidence"])
			}
			if u, _ := got["url"].(string); !strings.HasPrefix(u, "http") || !strings.Contains(u, got["host"].(string)) {
				t.Errorf("url %q does not name host %v", u, got["host"])
			}
		})
	}

	var out, errb bytes.Buffer
	if code := runProbe(scenarioArgs(t, n, "tls-reset"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "BLOCKED: tls-reset."+testnet.Domain+" is blocked (tls-reset)") || !strings.Contains(out.String(), "SNI") {
		t.Errorf("human output:\n%s", out.String())
	}
	for _, bad := range [][]string{{}, {"a", "b"}, {"ftp://x/"}, {"https://x/", "--connect-to", "nonsense"}} {
		if code := runProbe(bad, &out, &errb); code == 0 {
			t.Errorf("runProbe(%q) succeeded", bad)
		}
	}
}

func scenarioArgs(t *testing.T, n *testnet.Network, name string) []string {
	t.Helper()
	s, ok := n.Scenario(name)
	if !ok {
		t.Fatalf("no scenario %s", name)
	}
	return append(s.ProbeArgs(n), "--timeout", "5s")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
