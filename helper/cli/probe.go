package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/helper/whitelist"
)

func init() {
	Add(Command{
		Name:    "probe",
		Usage:   "URL [--dns ADDR] [--connect-to H1:P1:H2:P2]... [--ca-file FILE] [--proxy URL] [--timeout DUR] [--control-hub URL] [--json]",
		Summary: "diagnose whether URL is blocked, how and by which filter",
		Run:     runProbe,
	})
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func runProbe(args []string, stdout, stderr io.Writer) int {
	// The DETOUR_PROBE_* variables (test and development knobs) give the
	// defaults; flags override them.
	env, err := probe.FromEnv(os.Getenv)
	if err != nil {
		return Fail(stderr, err)
	}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dns := fs.String("dns", env.DNS, "ask this resolver (ADDR or ADDR:PORT) instead of the system's")
	var connectTo, secondDNS listFlag
	fs.Var(&connectTo, "connect-to", "HOST1:PORT1:HOST2:PORT2: connect there instead, like curl (repeatable)")
	caFile := fs.String("ca-file", env.CAFile, "PEM roots to use as this machine's trust store instead of the system's")
	publicCA := fs.String("public-ca-file", env.PublicCAFile, "PEM roots to count as public CAs (test networks)")
	proxy := fs.String("proxy", env.Proxy, "proxy URL (default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY)")
	timeout := fs.Duration("timeout", orDuration(env.Timeout, probe.DefaultTimeout), "give up after this long")
	captive := fs.String("captive-url", env.CaptiveURL, "connectivity-check URL that answers 204 when there is no captive portal")
	fs.Var(&secondDNS, "second-dns", "resolver asked for a second opinion when a name does not exist (repeatable)")
	controlHub := fs.String("control-hub", "", "ask this hub's control measurement (GET /api/v1/control) when the verdict is ambiguous, if it offers one")
	asJSON := fs.Bool("json", false, "print the verdict as one JSON object")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: detour probe "+commands["probe"].Usage)
		return 2
	}
	o := probe.Options{
		DNS: *dns, ConnectTo: append(env.ConnectTo, connectTo...), CAFile: *caFile, PublicCAFile: *publicCA,
		Proxy: *proxy, Timeout: *timeout, CaptiveURL: *captive, SecondDNS: env.SecondDNS,
	}
	if len(secondDNS) > 0 {
		o.SecondDNS = secondDNS
	}
	o = probe.WithDefaults(o)
	o.Catalog = cliCatalog()
	if *controlHub != "" {
		ix := cliIndex()
		o.Control = &probe.Control{
			Hub: func() string { return *controlHub },
			HostFor: func(host string) string {
				_, matched := ix.Document().MatchHost(host)
				return matched
			},
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout+2*time.Second)
	defer cancel()
	v, err := probe.Probe(ctx, pos[0], o)
	if err != nil {
		return Fail(stderr, err)
	}
	if *asJSON {
		if err := PrintJSON(stdout, v); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	printVerdict(stdout, v)
	return 0
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// cliCatalog names the catalog service of a host: from the verified
// whitelist cache when there is one, else from the seed catalog built in.
func cliCatalog() func(string) *string {
	ix := cliIndex()
	return func(host string) *string {
		if s := ix.ServiceForHost(host); s != nil {
			id := s.ID
			return &id
		}
		return nil
	}
}

// printVerdict is the human form: a verdict line, then the evidence.
func printVerdict(w io.Writer, v probe.Verdict) {
	what := v.Host
	if v.Service != nil {
		what = fmt.Sprintf("%s (%s)", v.Host, *v.Service)
	}
	by := ""
	if v.Vendor != nil {
		by = " by " + *v.Vendor
	}
	if v.Blocked {
		fmt.Fprintf(w, "BLOCKED: %s is blocked%s (%s), confidence %.0f%%\n", what, by, v.Method, v.Confidence*100)
	} else if v.Possible {
		fmt.Fprintf(w, "POSSIBLY BLOCKED: %s may be blocked%s (%s), confidence %.0f%%; the evidence does not prove it\n", what, by, v.Method, v.Confidence*100)
	} else {
		reason := map[string]string{
			"reachable":      "is reachable: not blocked",
			"site-down":      "is not blocked: the site itself is down or does not exist",
			"offline":        "is not blocked: this device seems to be offline",
			"captive-portal": "is not blocked: a captive portal wants you to sign in to the network first",
			"unknown":        "could not be diagnosed: no sign of a block",
		}[v.Method]
		if reason == "" {
			reason = "is not blocked (" + v.Method + ")"
		}
		fmt.Fprintf(w, "NOT BLOCKED: %s %s%s, confidence %.0f%%\n", what, reason, by, v.Confidence*100)
	}
	for _, e := range v.Evidence {
		fmt.Fprintf(w, "  - %s\n", e)
	}
	fmt.Fprintf(w, "(%d ms)\n", v.ElapsedMS)
}

// cliIndex is the verified whitelist cache when there is one, else the
// seed catalog built in.
func cliIndex() *whitelist.Index {
	ix := whitelist.SeedIndex()
	if dirs, err := paths.Default(); err == nil {
		if cp, _, err := loadCache(dirs); err == nil && cp != nil && cp.Index != nil {
			ix = cp.Index
		}
	}
	return ix
}
