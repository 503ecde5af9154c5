package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/detour-project/detour/helper/agent"
	"github.com/detour-project/detour/helper/paths"
)

func init() {
	Add(Command{
		Name:    "agent",
		Usage:   "[--hub URL] [--no-tray]",
		Summary: "run the per-user agent (browsers' relays start it when needed)",
		Run:     runAgent,
	})
}

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hub := fs.String("hub", "", "the hub's base URL, stored in the config (e.g. http://127.0.0.1:8080)")
	noTray := fs.Bool("no-tray", false, "do not start detour-tray on a desktop")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "detour agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = agent.Run(ctx, agent.Options{Dirs: dirs, Hub: *hub, NoTray: *noTray})
	if errors.Is(err, agent.ErrAlreadyRunning) {
		// Quietly: relays racing to start an agent all end up here but one.
		if f, ok := stderr.(*os.File); ok && isTerminal(f) {
			fmt.Fprintln(stderr, "detour agent: an agent is already running for this user")
		}
		return 0
	}
	if err != nil {
		return Fail(stderr, err)
	}
	return 0
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
