package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/dashboard"
	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/method"
)

func init() {
	AddAdmin(AdminCommand{
		Path:    "user add",
		Usage:   "EMAIL --role sector-admin|org-admin|viewer [--org ID] [--json]",
		Summary: "create a dashboard account; prints a one-time password",
		Run:     adminUserAdd,
	})
	AddAdmin(AdminCommand{
		Path:    "api-token create",
		Usage:   "EMAIL [--label TEXT] [--json]",
		Summary: "a bearer token for GET /api/v1/aggregates, acting as EMAIL",
		Run:     adminAPIToken,
	})
	AddAdmin(AdminCommand{
		Path:    "aggregates",
		Usage:   "[--org ID] [--round] [--json]",
		Summary: "the k-anonymous figures GET /api/v1/aggregates gives (--round as serve --round)",
		Run:     adminAggregates,
	})
	AddAdmin(AdminCommand{
		Path:    "seed-demo",
		Usage:   "[--days N] [--json]",
		Summary: "add made-up report counts for every catalog organisation (demos and tests)",
		Run:     adminSeedDemo,
	})
}

// parseInterspersed lets flags come after positional words (EMAIL --role x),
// as the documented usage writes them.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func adminUserAdd(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", "", "sector-admin, org-admin or viewer")
	org := fs.String("org", "", "organisation id (org-admin, optional for viewer)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: user add EMAIL --role sector-admin|org-admin|viewer [--org ID]")
	}
	pw, err := dashboard.AddUser(ctx, h.DB, pos[0], *role, *org)
	if err != nil {
		return err
	}
	if *asJSON {
		return PrintJSON(stdout, map[string]string{"email": pos[0], "role": *role, "org": *org, "password": pw})
	}
	fmt.Fprintf(stdout, "Account %s (%s) created.\nOne-time password: %s\nIt must be changed at first sign-in.\n", pos[0], *role, pw)
	return nil
}

func adminAPIToken(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("api-token create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	label := fs.String("label", "", "what the token is for")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: api-token create EMAIL [--label TEXT]")
	}
	tok, err := dashboard.CreateAPIToken(ctx, h.DB, pos[0], *label)
	if err != nil {
		return err
	}
	if *asJSON {
		return PrintJSON(stdout, map[string]string{"email": pos[0], "token": tok})
	}
	fmt.Fprintf(stdout, "%s\n(shown once; send it as Authorization: Bearer TOKEN)\n", tok)
	return nil
}

func adminAggregates(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("aggregates", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	org := fs.String("org", "", "one organisation's figures")
	round := fs.Bool("round", h.Cfg.Round, "round counts at or above k to the nearest 5, as `serve --round` does")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	p := h.Privacy()
	p.Round = *round
	rep, err := aggregates.GetReport(ctx, h.DB, p, time.Now(), *org)
	if err != nil {
		return err
	}
	if *asJSON {
		return PrintJSON(stdout, rep)
	}
	ov := rep.Overview
	scope := "every organisation"
	if *org != "" {
		scope = *org
	}
	fmt.Fprintf(stdout, "Reports for %s, %s to %s (counts below %d show as \"fewer than %d\")\n", scope, ov.Window.From, ov.Window.To, rep.K, rep.K)
	fmt.Fprintf(stdout, "Blocks this week (%s to %s): %s\nTotal: %s\n", ov.Week.From, ov.Week.To, ov.BlocksThisWeek, ov.Total)
	fmt.Fprintln(stdout, "Top blocked services:")
	for _, it := range ov.TopServices {
		fmt.Fprintf(stdout, "  %-30s %s\n", it.Key, it.Count)
	}
	fmt.Fprintln(stdout, "Needs:")
	for _, it := range ov.Needs {
		fmt.Fprintf(stdout, "  %-30s %s\n", it.Key, it.Count)
	}
	if rep.Org != nil {
		fmt.Fprintln(stdout, "Methods:")
		for _, it := range rep.Org.Methods {
			fmt.Fprintf(stdout, "  %-30s %s\n", it.Key, it.Count)
		}
	}
	return nil
}

// adminSeedDemo fills report_counts with made-up figures for every
// organisation and service in the catalog, some below k and some above, so
// a fresh demo hub or a browser test has something to show.
func adminSeedDemo(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("seed-demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	days := fs.Int("days", 14, "days of history")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if h.Catalog == nil || h.Catalog.Document() == nil {
		return errors.New("the catalog is not set up: nothing to seed")
	}
	doc := h.Catalog.Document()
	if len(doc.Organisations) == 0 || len(doc.Services) == 0 {
		return errors.New("the catalog has no organisations or no services: add them first")
	}
	var rows, total int64
	today := time.Now().UTC()
	// Counted all at once, in IncrementAll's key order, like report intake:
	// a seed run beside live hubs on PostgreSQL then cannot deadlock with
	// their groups over the counter rows.
	err := h.DB.InTx(ctx, func(tx *store.Tx) error {
		counts := map[aggregates.Key]int64{}
		rows, total = 0, 0 // from the start if the transaction is retried
		for d := 0; d < *days; d++ {
			day := today.AddDate(0, 0, -d).Format(time.DateOnly)
			for oi, o := range doc.Organisations {
				for si, s := range doc.Services {
					// A deterministic, skewed spread: a few services and the
					// largest organisations get many reports, the long tail a
					// few (shown as "fewer than k"), some days none.
					rank := (si*37 + 11) % len(doc.Services)
					n := int64(90*(d%3+1)) / int64((rank+1)*(oi%3+1))
					if n == 0 || rank >= 25 || (si+oi+d)%5 == 4 {
						continue
					}
					k := aggregates.Key{Day: day, Org: o.ID, Service: s.ID,
						Method: method.Blocks[(oi+si)%len(method.Blocks)], Need: method.Needs[(si+d)%len(method.Needs)]}
					counts[k] += n
					rows++
					total += n
				}
			}
		}
		return aggregates.IncrementAll(ctx, tx, counts)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return PrintJSON(stdout, map[string]int64{"rows": rows, "reports": total})
	}
	fmt.Fprintf(stdout, "Seeded %d counters holding %d made-up reports over %d days.\n", rows, total, *days)
	return nil
}
