package cli

import (
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/detour-project/detour/shared/ids"
	"github.com/detour-project/detour/shared/version"
)

func init() {
	Add(Command{
		Name:    "version",
		Usage:   "[--json]",
		Summary: "print the helper's version and protocol version",
		Run:     runVersion,
	})
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *asJSON {
		if err := PrintJSON(stdout, map[string]any{
			"version": version.Version, "protocol": version.Protocol,
			"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
			// What the native host admits, so IT can check a build made
			// with DETOUR_EXTENSION_IDS.
			"extensions": ids.Extensions(),
		}); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	fmt.Fprintf(stdout, "detour %s (protocol %d, %s %s/%s)\n", version.Version, version.Protocol, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
