package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/whitelist"
	"github.com/detour-project/detour/shared/protocol"
)

func init() {
	Add(Command{
		Name:    "sync",
		Usage:   "[--json]",
		Summary: "fetch the whitelist from the hub now",
		Run:     runSync,
	})
}

// syncTimeout bounds a sync from the command line: a fetch of one document.
const syncTimeout = 30 * time.Second

// syncOutput is what `detour sync --json` prints: the sync message's result
// and whether the agent did it.
type syncOutput struct {
	protocol.SyncResult
	Agent bool `json:"agent"`
}

func runSync(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "detour sync: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()

	out, err := syncViaAgent(ctx, dirs)
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			return Fail(stderr, err)
		}
		// No agent: fetch and write the cache here, with the same checks.
		out, err = syncDirect(ctx, dirs)
		if err != nil {
			return Fail(stderr, err)
		}
	}
	if *asJSON {
		if err := PrintJSON(stdout, out); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	switch {
	case out.Version == nil:
		fmt.Fprintln(stdout, "No whitelist yet.")
	case out.Changed:
		fmt.Fprintf(stdout, "Whitelist updated to version %d.\n", *out.Version)
	default:
		fmt.Fprintf(stdout, "Whitelist version %d is current.\n", *out.Version)
	}
	return 0
}

func syncViaAgent(ctx context.Context, dirs paths.Dirs) (syncOutput, error) {
	out := syncOutput{Agent: true}
	dctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	cl, err := localapi.Connect(dctx, localapi.Options{Dirs: dirs, Caller: protocol.CallerCLI})
	if err != nil {
		return out, err
	}
	defer cl.Close()
	out.SyncResult, err = cl.Sync(ctx)
	return out, err
}

// syncDirect does what the agent's sync does, for when no agent runs: the
// same client, the same verification, the same cache file. The agent, when it
// starts, verifies that file again.
func syncDirect(ctx context.Context, dirs paths.Dirs) (syncOutput, error) {
	var out syncOutput
	st, err := config.Open(dirs.ConfigFile())
	if err != nil {
		return out, err
	}
	c := whitelist.New(whitelist.Options{CachePath: whitelist.CachePath(dirs), Settings: st.Get})
	changed, err := c.SyncNow(ctx)
	if err != nil {
		return out, err
	}
	out.Changed = changed
	if d := c.Current(); d != nil {
		v := d.Version
		out.Version = &v
	}
	return out, nil
}
