package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/reports"
	"github.com/detour-project/detour/shared/protocol"
)

func init() {
	Add(Command{
		Name:    "enrol",
		Usage:   "--hub URL --code CODE [--json]",
		Summary: "enrol this device with an organisation's hub (needed to report)",
		Run:     runEnrol,
	})
}

func runEnrol(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("enrol", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hub := fs.String("hub", "", "the hub's base URL, e.g. https://hub.example.org")
	code := fs.String("code", "", "the enrolment code from your IT team")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *hub == "" || *code == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: detour enrol --hub URL --code CODE [--json]")
		return 2
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := enrolViaAgent(ctx, dirs, *hub, *code)
	if errors.Is(err, errNoAgent) {
		e, err = enrolHere(ctx, dirs, *hub, *code)
	}
	if err != nil {
		return Fail(stderr, err)
	}
	if *asJSON {
		PrintJSON(stdout, e)
		return 0
	}
	fmt.Fprintf(stdout, "Enrolled with organisation %s at %s (%d whitelist keys pinned). You can now report blocks.\n", e.Org, e.Hub, e.WhitelistKeys)
	return 0
}

var errNoAgent = errors.New("no agent")

// enrolViaAgent asks the agent (starting it if needed) to enrol, so the one
// process that owns the state changes it.
func enrolViaAgent(ctx context.Context, dirs paths.Dirs, hub, code string) (*protocol.EnrolResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, errNoAgent
	}
	cl, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs, Caller: protocol.CallerCLI, Start: exe})
	if errors.Is(err, localapi.ErrNoAgent) {
		return nil, fmt.Errorf("%w: %v", errNoAgent, err)
	}
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	e, err := cl.Enrol(ctx, protocol.EnrolParams{Hub: hub, Code: code})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// enrolHere enrols in this process when no agent can run; the agent reads
// the result at its next start.
func enrolHere(ctx context.Context, dirs paths.Dirs, hub, code string) (*protocol.EnrolResult, error) {
	if err := dirs.Ensure(); err != nil {
		return nil, err
	}
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		return nil, err
	}
	secrets, err := keyring.Open(dirs)
	if err != nil {
		return nil, err
	}
	r, err := reports.New(reports.Options{Dirs: dirs, Config: cfg, Secrets: secrets})
	if err != nil {
		return nil, err
	}
	e, err := r.Enrol(ctx, hub, code)
	if err != nil {
		return nil, err
	}
	return &protocol.EnrolResult{Hub: e.Hub, Org: e.Org, WhitelistKeys: e.WhitelistKeys}, nil
}
