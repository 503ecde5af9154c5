package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/whitelist"
	"github.com/detour-project/detour/shared/protocol"
)

func init() {
	Add(Command{
		Name:    "suggest",
		Usage:   "HOST [--org ID] [--json]",
		Summary: "say which service HOST is, its status at your organisation and the approved alternatives",
		Run:     runSuggest,
	})
}

// agentTimeout bounds a command-line call to the agent; suggest is answered
// from memory, so anything slower is an agent in trouble.
const agentTimeout = 5 * time.Second

func runSuggest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("suggest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	org := fs.String("org", "", "organisation id (default: the one this device enrolled with)")
	asJSON := fs.Bool("json", false, "print the result as JSON (the suggest message's result)")
	hosts, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(hosts) != 1 {
		fmt.Fprintln(stderr, "usage: detour suggest HOST [--org ID] [--json]")
		return 2
	}
	host, err := hostOf(hosts[0])
	if err != nil {
		return Fail(stderr, err)
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}

	res, src, err := suggestViaAgent(dirs, host, *org)
	if err != nil {
		res, src = suggestFromCache(dirs, host, *org, stderr)
	}
	if *asJSON {
		if err := PrintJSON(stdout, res); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	printSuggestion(stdout, res, src)
	return 0
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (`detour suggest zoom.us --json`), which the flag
// package alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// hostOf accepts a host name or a URL and returns the host name alone: the
// path and query are never looked at.
func hostOf(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return "", fmt.Errorf("%q is not a host name or URL", s)
		}
		return strings.ToLower(u.Hostname()), nil
	}
	if s == "" || strings.ContainsAny(s, "/?# @") {
		return "", fmt.Errorf("%q is not a host name (give zoom.us or https://zoom.us/...)", s)
	}
	return strings.ToLower(strings.TrimSuffix(s, ".")), nil
}

// suggestViaAgent asks a running agent; it never starts one, since the cache
// answers as well for a one-off question.
func suggestViaAgent(dirs paths.Dirs, host, org string) (protocol.SuggestResult, *whitelist.Index, error) {
	var res protocol.SuggestResult
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	cl, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs, Caller: protocol.CallerCLI})
	if err != nil {
		return res, nil, err
	}
	defer cl.Close()
	res, err = cl.Suggest(ctx, protocol.SuggestParams{Host: host, Org: org})
	if err != nil {
		return res, nil, err
	}
	// Names for the human output come from the verified cache the agent
	// wrote, or the built-in catalog.
	if cp, _, err := loadCache(dirs); err == nil {
		return res, cp.Index, nil
	}
	return res, nil, nil
}

// suggestFromCache answers without an agent, from the verified cache file,
// or from the built-in catalog (no policies) when there is none.
func suggestFromCache(dirs paths.Dirs, host, org string, stderr io.Writer) (protocol.SuggestResult, *whitelist.Index) {
	cp, cfg, err := loadCache(dirs)
	if org == "" {
		org = cfg.Org
	}
	if err != nil {
		fmt.Fprintf(stderr, "detour: no agent running and no verified whitelist (%v); using the built-in catalog, without any organisation's policies\n", err)
		return whitelist.SeedIndex().Suggest(host, org, true), nil
	}
	return cp.Index.Suggest(host, org, cacheStale(cp, time.Now())), cp.Index
}

// loadCache reads the config and the cache file, verifying the cache with
// the pinned keys exactly as the agent does.
func loadCache(dirs paths.Dirs) (*whitelist.Copy, config.Config, error) {
	st, err := config.Open(dirs.ConfigFile())
	if err != nil {
		return nil, config.Config{}, err
	}
	cfg := st.Get()
	keys, err := whitelist.PinnedKeys(cfg.WhitelistKeys)
	if err != nil {
		return nil, cfg, err
	}
	cp, err := whitelist.ReadCache(whitelist.CachePath(dirs), keys)
	if err != nil {
		return nil, cfg, err
	}
	return cp, cfg, nil
}

// cacheStale applies the agent's rule to a copy read from disk: expired, or
// fetched longer ago than the sync interval.
func cacheStale(cp *whitelist.Copy, now time.Time) bool {
	return now.After(cp.Doc.ExpiresAt) || now.Sub(cp.FetchedAt) > whitelist.DefaultInterval
}

func printSuggestion(w io.Writer, res protocol.SuggestResult, ix *whitelist.Index) {
	if ix == nil {
		ix = whitelist.SeedIndex()
	}
	name := func(id string) string {
		if s := ix.Service(id); s != nil && s.Name != "" {
			return s.Name
		}
		return id
	}
	if res.Service == nil {
		fmt.Fprintf(w, "%s is not a service in the Detour catalog.\n", res.Host)
		printStale(w, res)
		return
	}
	svc := ix.Service(*res.Service)
	cat := ""
	if svc != nil {
		cat = " (" + svc.Category + ")"
	}
	fmt.Fprintf(w, "%s is %s%s.\n", res.Host, name(*res.Service), cat)
	switch {
	case res.Org == nil:
		fmt.Fprintln(w, "No organisation given (--org) or enrolled: alternatives are ranked by approvals across organisations.")
	default:
		orgName := *res.Org
		if o := ix.Organisation(*res.Org); o != nil {
			orgName = o.Name
		}
		fmt.Fprintf(w, "Status at %s: %s.\n", orgName, res.Status)
	}
	fmt.Fprintf(w, "Approved by %s.\n", countOf(res.Approvals, "organisation", "organisations"))
	// The organisation's own word, cleaned again for the terminal (an agent
	// of another version may not have), further lines indented.
	if note := whitelist.CleanNote(res.Note); note != "" {
		fmt.Fprintf(w, "What your IT team says: %s\n", strings.ReplaceAll(note, "\n", "\n  "))
	}
	if len(res.Alternatives) == 0 {
		fmt.Fprintln(w, "No approved alternative is known.")
	} else {
		fmt.Fprintln(w, "Alternatives:")
		for _, a := range res.Alternatives {
			line := fmt.Sprintf("  %d. %s", a.Rank, name(a.Service))
			if s := ix.Service(a.Service); s != nil && s.URL != "" {
				line += " — " + s.URL
			}
			fmt.Fprintln(w, line)
			for _, r := range a.Reasons {
				fmt.Fprintf(w, "     - %s\n", r.Text)
			}
		}
	}
	printStale(w, res)
}

func printStale(w io.Writer, res protocol.SuggestResult) {
	if res.Stale {
		fmt.Fprintln(w, "Warning: the whitelist may be out of date (the hub has not been reached recently, the copy has expired, or there is none yet). Run `detour sync`.")
	}
}

func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
