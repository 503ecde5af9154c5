package probe

import (
	"fmt"
	"strings"
	"time"
)

// Environment variables that set probe options for tests and development:
// they point the agent (and `detour probe`, where a flag does not say
// otherwise) at a simulated network such as test/testnet. They are not
// meant for production; a real network needs none of them.
const (
	EnvDNS          = "DETOUR_PROBE_DNS"            // resolver address, as --dns
	EnvSecondDNS    = "DETOUR_PROBE_SECOND_DNS"     // comma-separated second-opinion resolvers
	EnvConnectTo    = "DETOUR_PROBE_CONNECT_TO"     // comma-separated HOST1:PORT1:HOST2:PORT2
	EnvCAFile       = "DETOUR_PROBE_CA_FILE"        // the machine's trust store, as --ca-file
	EnvPublicCAFile = "DETOUR_PROBE_PUBLIC_CA_FILE" // extra "public" roots, as --public-ca-file
	EnvProxy        = "DETOUR_PROBE_PROXY"          // proxy URL, as --proxy
	EnvCaptiveURL   = "DETOUR_PROBE_CAPTIVE_URL"    // connectivity-check URL, as --captive-url
	EnvTimeout      = "DETOUR_PROBE_TIMEOUT"        // overall timeout, a Go duration
)

// FromEnv reads the DETOUR_PROBE_* variables through getenv (os.Getenv).
func FromEnv(getenv func(string) string) (Options, error) {
	o := Options{
		DNS:          strings.TrimSpace(getenv(EnvDNS)),
		SecondDNS:    splitList(getenv(EnvSecondDNS)),
		ConnectTo:    splitList(getenv(EnvConnectTo)),
		CAFile:       strings.TrimSpace(getenv(EnvCAFile)),
		PublicCAFile: strings.TrimSpace(getenv(EnvPublicCAFile)),
		Proxy:        strings.TrimSpace(getenv(EnvProxy)),
		CaptiveURL:   strings.TrimSpace(getenv(EnvCaptiveURL)),
	}
	if t := strings.TrimSpace(getenv(EnvTimeout)); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("probe: %s=%q is not a positive duration", EnvTimeout, t)
		}
		o.Timeout = d
	}
	if _, err := parseConnectTo(o.ConnectTo); err != nil {
		return o, fmt.Errorf("probe: %s: %w", EnvConnectTo, err)
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
