package cli

import (
	"flag"
	"fmt"
	"io"

	"github.com/detour-project/detour/installer"
)

func init() {
	Add(Command{
		Name:    "uninstall",
		Usage:   "[--system] [--root DIR] [--json]",
		Summary: "remove exactly what `detour install` wrote",
		Run:     runUninstall,
	})
}

func runUninstall(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("uninstall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f installFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o, err := f.options()
	if err != nil {
		return Fail(stderr, err)
	}
	res, err := installer.Uninstall(o)
	if err != nil {
		return Fail(stderr, err)
	}
	if f.json {
		if err := PrintJSON(stdout, res); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	for _, e := range res.Removed {
		fmt.Fprintf(stdout, "removed  %-8s %s\n", e.Browser, where(e))
	}
	for _, e := range res.Restored {
		fmt.Fprintf(stdout, "restored %-8s %s (as it was before install)\n", e.Browser, where(e))
	}
	for _, k := range res.Kept {
		fmt.Fprintf(stdout, "kept     %-8s %s\n", k.Browser, k.Reason)
	}
	if len(res.Removed)+len(res.Restored)+len(res.Kept) == 0 {
		fmt.Fprintln(stdout, "nothing to remove: no install recorded at", res.Record)
	}
	return 0
}
