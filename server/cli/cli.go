// Package cli is the detour-server command line: serve, admin and version.
// Admin subcommands live beside the domain they change (admin_*.go) and are
// registered with AddAdmin; they open the same database as serve, so they
// work while it runs.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/shared/huburl"
)

// AdminCommand is one `detour-server admin ...` subcommand, named by its
// words ("org add", "policy set", "catalog import").
type AdminCommand struct {
	Path    string
	Usage   string
	Summary string
	Run     func(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error
	// Configure, if set, adjusts the hub's configuration before it opens
	// (a command that must run before the hub's usual checks).
	Configure func(cfg *hub.Config)
}

var admin = map[string]AdminCommand{}

// AddAdmin registers an admin subcommand; call it from an init function.
func AddAdmin(c AdminCommand) { admin[c.Path] = c }

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		if isHelp(args[1:]) {
			serveMain([]string{"-h"}, stdout, stdout)
			return 0
		}
		return serveMain(args[1:], stdout, stderr)
	case "admin":
		if isHelp(args[1:]) {
			usage(stdout)
			adminMain([]string{"-h"}, stdout, stdout)
			return 0
		}
		return adminMain(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return versionMain(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "detour-server: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage:")
	fmt.Fprintln(w, "  detour-server serve [--addr 127.0.0.1:8080] [--data DIR] [--db sqlite:PATH|postgres://...] [--master-key-file F] [--tls-cert F --tls-key F]")
	fmt.Fprintln(w, "  detour-server admin [--data DIR | --db URL [--master-key-file F]] COMMAND ...")
	paths := make([]string, 0, len(admin))
	for p := range admin {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		c := admin[p]
		fmt.Fprintf(w, "      %-60s %s\n", p+" "+c.Usage, c.Summary)
	}
	fmt.Fprintln(w, "  detour-server version [--json]")
}

// commonFlags are the flags serve and admin share.
func commonFlags(fs *flag.FlagSet, cfg *hub.Config) {
	fs.StringVar(&cfg.DataDir, "data", envOr("DETOUR_DATA", "detour-data"), "data folder: signing keys and the SQLite database")
	fs.StringVar(&cfg.DSN, "db", os.Getenv("DETOUR_DB"), "database: sqlite:PATH or postgres://... (default sqlite:DATA/detour.db)")
	fs.IntVar(&cfg.K, "k", 5, "k-anonymity threshold: counts below it show as \"fewer than k\"")
	fs.StringVar(&cfg.MasterKeyFile, "master-key-file", os.Getenv("DETOUR_MASTER_KEY_FILE"),
		"master key (32 or more random bytes, the same file on every hub): keeps the signing and issuer keys in the database, sealed with it, so several hubs share them")
	fs.StringVar(&cfg.PublicURL, "public-url", os.Getenv("DETOUR_PUBLIC_URL"),
		"how helpers and browsers reach this hub, e.g. https://hub.example.org: it names the token issuer, and an https URL makes sign-in cookies Secure behind a TLS proxy")
}

// checkPublicURL refuses a --public-url that is not an absolute http(s) URL:
// the token issuer is named after its host, so a typo would silently
// invalidate every helper's unspent tokens.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	// The one hub-URL rule (shared/huburl), and no path: the issuer name
	// is the bare origin.
	base, err := huburl.Parse(s)
	if err == nil {
		if u, _ := url.Parse(base); u.Path != "" {
			err = errors.New("it has a path")
		}
	}
	if err != nil {
		return fmt.Errorf("--public-url %q: want an http(s) URL with a host and no path, e.g. https://hub.example.org (%v)", s, err)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func adminMain(args []string, stdout, stderr io.Writer) int {
	var cfg hub.Config
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	commonFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkPublicURL(cfg.PublicURL); err != nil {
		fmt.Fprintf(stderr, "detour-server admin: %v\n", err)
		return 2
	}
	rest := fs.Args()
	var cmd AdminCommand
	var found bool
	// Longest match of the command's words: "catalog import" before "catalog".
	for n := len(rest); n > 0 && !found; n-- {
		cmd, found = admin[strings.Join(rest[:n], " ")]
		if found {
			rest = rest[n:]
		}
	}
	if !found {
		fmt.Fprintf(stderr, "detour-server admin: unknown command %q\n", strings.Join(rest, " "))
		usage(stderr)
		return 2
	}
	if cmd.Configure != nil {
		cmd.Configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := hub.Open(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "detour-server admin: %v\n", err)
		return 1
	}
	defer h.Close()
	if err := cmd.Run(ctx, h, rest, stdout); err != nil {
		fmt.Fprintf(stderr, "detour-server admin %s: %v\n", cmd.Path, err)
		return 1
	}
	return 0
}

// PrintJSON writes v as indented JSON.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
