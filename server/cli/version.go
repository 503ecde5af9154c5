package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/detour-project/detour/shared/version"
)

// versionMain is `detour-server version [--json]`: the hub's version, the
// protocol it speaks with helpers, and what it was built with, so that
// scripts can check a deployment without parsing prose.
func versionMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "detour-server version: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "detour-server %s\n", version.Version)
		return 0
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{
		"version": version.Version, "protocol": version.Protocol,
		"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
	}); err != nil {
		fmt.Fprintf(stderr, "detour-server: %v\n", err)
		return 1
	}
	return 0
}

// isHelp reports whether args are just a request for help: asking is not an
// error, so it exits 0.
func isHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")
}
