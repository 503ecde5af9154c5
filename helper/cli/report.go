package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/protocol"
)

func init() {
	Add(Command{
		Name:    "report",
		Usage:   "HOST [--need NEED] [--now] [--json]",
		Summary: "report a block of HOST anonymously (diagnoses it first); --now skips the random send delay",
		Run:     runReport,
	})
}

func runReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	need := fs.String("need", "other", "why you needed it: meeting, shared-document, file-exchange, project-board, guidance, other")
	now := fs.Bool("now", false, "send at once instead of after a random delay (for scripts and tests)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: detour report HOST [--need NEED] [--now] [--json]")
		return 2
	}
	host := pos[0]
	// A URL is accepted for convenience; only its host is ever used.
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil || u.Hostname() == "" {
			return Fail(stderr, fmt.Errorf("%q is not a host name", host))
		}
		host = u.Hostname()
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}
	// Diagnosis, then (with --now) the send, happen before the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return Fail(stderr, err)
	}
	cl, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs, Caller: protocol.CallerCLI, Start: exe})
	if errors.Is(err, localapi.ErrNoAgent) {
		return Fail(stderr, fmt.Errorf("reporting needs the agent: %w", err))
	}
	if err != nil {
		return Fail(stderr, err)
	}
	defer cl.Close()
	res, err := cl.Report(ctx, protocol.ReportParams{Host: host, Need: *need, Now: *now})
	if err != nil {
		return Fail(stderr, err)
	}
	if *asJSON {
		PrintJSON(stdout, res)
		return 0
	}
	switch res.State {
	case "sent":
		fmt.Fprintln(stdout, "Report sent anonymously to your organisation's hub.")
	default:
		fmt.Fprintf(stdout, "Report queued (%d waiting); it is sent anonymously after a short random delay.\n", res.Queued)
	}
	return 0
}
