package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/helper/whitelist"
	"github.com/detour-project/detour/shared/protocol"
)

func init() {
	Add(Command{
		Name:    "common",
		Usage:   "ORG ORG... [--category C] [--json]",
		Summary: "list the tools every named organisation approves, per category (from the whitelist this device holds; nothing is sent)",
		Run:     runCommon,
	})
}

func runCommon(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("common", flag.ContinueOnError)
	fs.SetOutput(stderr)
	category := fs.String("category", "", "only this category: "+strings.Join(whitelist.CommonOrder, ", "))
	asJSON := fs.Bool("json", false, "print the result as JSON (the common message's result)")
	orgs, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(orgs) == 0 {
		fmt.Fprintln(stderr, "usage: detour common ORG ORG... [--category C] [--json]")
		return 2
	}
	for i := range orgs {
		orgs[i] = strings.ToLower(strings.TrimSpace(orgs[i]))
	}
	dirs, err := paths.Default()
	if err != nil {
		return Fail(stderr, err)
	}

	res, ix, err := commonViaAgent(dirs, orgs, *category)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		// The agent understood and refused (an unknown organisation, a bad
		// category): its sentence is the answer.
		return Fail(stderr, errors.New(pe.Message))
	}
	if err != nil {
		res, ix, err = commonFromCache(dirs, orgs, *category, stderr)
		if err != nil {
			return Fail(stderr, err)
		}
	}
	if *asJSON {
		if err := PrintJSON(stdout, res); err != nil {
			return Fail(stderr, err)
		}
		return 0
	}
	printCommon(stdout, res, ix)
	return 0
}

// commonViaAgent asks a running agent and never starts one; a cache read
// answers as well.
func commonViaAgent(dirs paths.Dirs, orgs []string, category string) (protocol.CommonResult, *whitelist.Index, error) {
	ctx, cancel := context.WithTimeout(context.Background(), agentTimeout)
	defer cancel()
	cl, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs, Caller: protocol.CallerCLI})
	if err != nil {
		return protocol.CommonResult{}, nil, err
	}
	defer cl.Close()
	res, err := cl.Common(ctx, protocol.CommonParams{Orgs: orgs, Category: category})
	if err != nil {
		return res, nil, err
	}
	if cp, _, err := loadCache(dirs); err == nil {
		return res, cp.Index, nil
	}
	return res, nil, nil
}

// commonFromCache answers without an agent from the verified cache file; the
// built-in catalog knows no organisation, so without a cache it can only say
// why there is no answer.
func commonFromCache(dirs paths.Dirs, orgs []string, category string, stderr io.Writer) (protocol.CommonResult, *whitelist.Index, error) {
	cp, _, err := loadCache(dirs)
	if err != nil {
		return protocol.CommonResult{}, nil, fmt.Errorf("no agent running and no verified whitelist (%v): run `detour sync` first", err)
	}
	res, err := cp.Index.Common(orgs, category, cacheStale(cp, time.Now()))
	return res, cp.Index, err
}

func printCommon(w io.Writer, res protocol.CommonResult, ix *whitelist.Index) {
	if ix == nil {
		ix = whitelist.SeedIndex()
	}
	names := make([]string, 0, len(res.Orgs))
	for _, o := range res.Orgs {
		names = append(names, o.Name)
	}
	fmt.Fprintf(w, "What works for %s:\n", strings.Join(names, ", "))
	for _, cat := range res.Categories {
		fmt.Fprintf(w, "\n%s\n", categoryTitle(cat.Category))
		if len(cat.Services) == 0 {
			fmt.Fprintln(w, "  Nothing that every organisation allows.")
			continue
		}
		for _, s := range cat.Services {
			name, url := s.Service, ""
			if svc := ix.Service(s.Service); svc != nil {
				name, url = svc.Name, svc.URL
			}
			line := "  " + name
			if url != "" {
				line += " — " + url
			}
			if s.Status == protocol.CommonConfirmed {
				line += " (approved by all"
			} else {
				var not []string
				for _, p := range s.Policies {
					if p.Status != "approved" {
						not = append(not, fmt.Sprintf("%s at %s", p.Status, orgName(res, p.Org)))
					}
				}
				line += " (unconfirmed: " + strings.Join(not, ", ")
			}
			if s.AgreedBy > 0 {
				line += "; agreed by " + countOf(s.AgreedBy, "organisation", "organisations")
			}
			if s.Approvals > 0 {
				line += "; approved by " + countOf(s.Approvals, "organisation", "organisations") + " in all"
			}
			line += ")"
			fmt.Fprintln(w, line)
		}
	}
	if res.Stale {
		fmt.Fprintln(w, "\nWarning: the whitelist may be out of date (the hub has not been reached recently, or the copy has expired). Run `detour sync`.")
	}
}

func orgName(res protocol.CommonResult, id string) string {
	for _, o := range res.Orgs {
		if o.ID == id {
			return o.Name
		}
	}
	return id
}

var categoryTitles = map[string]string{
	"video": "Video meetings", "documents": "Shared documents", "wiki": "Wikis", "files": "File storage",
	"projects": "Project boards", "chat": "Chat", "whiteboard": "Whiteboards", "forms": "Forms and surveys",
}

func categoryTitle(c string) string {
	if t, ok := categoryTitles[c]; ok {
		return t
	}
	return c
}
