package cli

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/relay"
)

// IsRelayInvocation reports whether a browser started us: Chrome passes the
// caller's origin, Firefox the manifest path and the extension id.
func IsRelayInvocation(args []string) bool {
	if strings.HasPrefix(args[0], "chrome-extension://") {
		return true
	}
	return len(args) >= 2 && strings.HasSuffix(args[0], ".json")
}

// runRelay runs the native-messaging relay. stdout carries frames only;
// every message for people goes to stderr, which browsers write to their log.
func runRelay(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dirs, err := paths.Default()
	if err != nil {
		log.Error("relay", "err", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		log.Error("relay: cannot find my own executable", "err", err)
		return 1
	}
	return relay.Run(context.Background(), relay.Options{
		Args: args, In: os.Stdin, Out: os.Stdout, Log: log,
		Dirs: dirs, Exe: exe, Allowed: relay.AllowedIDs(),
	})
}
