package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/hub"
)

func init() {
	AddAdmin(AdminCommand{Path: "agreement propose", Usage: "SERVICE --by ORG [--note TEXT] [--json]",
		Summary: "propose SERVICE for working across organisations (no version until someone endorses it)", Run: agreementPropose})
	AddAdmin(AdminCommand{Path: "agreement endorse", Usage: "ORG SERVICE [--json]",
		Summary: "ORG endorses the agreement for SERVICE and approves SERVICE in the same change (publishes a new version)", Run: agreementEndorse})
	AddAdmin(AdminCommand{Path: "agreement decline", Usage: "ORG SERVICE --reason TEXT [--json]",
		Summary: "ORG declines the agreement for SERVICE; the reason stays on the hub", Run: agreementDecline})
	AddAdmin(AdminCommand{Path: "agreement list", Usage: "[--json]",
		Summary: "every proposed agreement with each organisation's answer", Run: agreementList})
}

// agreementResult is what a change prints with --json: the new version, or
// 0 when nothing signed changed (a proposal, a decline of an agreement the
// organisation had not endorsed).
type agreementResult struct {
	Version int64 `json:"version"`
}

func printAgreement(w io.Writer, asJSON bool, what string, v int64) error {
	if asJSON {
		return PrintJSON(w, agreementResult{Version: v})
	}
	if v == 0 {
		_, err := fmt.Fprintf(w, "%s; the signed whitelist is unchanged\n", what)
		return err
	}
	_, err := fmt.Fprintf(w, "%s; whitelist version %d\n", what, v)
	return err
}

func agreementPropose(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("agreement propose", flag.ContinueOnError)
	by := fs.String("by", "", "the proposing organisation")
	note := fs.String("note", "", "why, for the other filtering owners")
	asJSON := fs.Bool("json", false, "machine-readable output")
	usage := "agreement propose SERVICE --by ORG [--note TEXT]"
	pos, err := parseArgs(fs, args, 1, usage)
	if err != nil {
		return err
	}
	if *by == "" {
		return fmt.Errorf("--by ORG is required (usage: %s)", usage)
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	v, err := cat.Propose(ctx, pos[0], *by, *note, adminActor)
	if err != nil {
		return err
	}
	return printAgreement(stdout, *asJSON, fmt.Sprintf("agreement for %s proposed by %s", pos[0], *by), v)
}

func agreementEndorse(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("agreement endorse", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	pos, err := parseArgs(fs, args, 2, "agreement endorse ORG SERVICE")
	if err != nil {
		return err
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	v, err := cat.Endorse(ctx, pos[0], pos[1], adminActor)
	if err != nil {
		return err
	}
	return printAgreement(stdout, *asJSON, fmt.Sprintf("%s endorses the agreement for %s and approves it", pos[0], pos[1]), v)
}

func agreementDecline(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("agreement decline", flag.ContinueOnError)
	reason := fs.String("reason", "", "why (kept on the hub, never published)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	usage := "agreement decline ORG SERVICE --reason TEXT"
	pos, err := parseArgs(fs, args, 2, usage)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return fmt.Errorf("--reason TEXT is required (usage: %s)", usage)
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	v, err := cat.Decline(ctx, pos[0], pos[1], *reason, adminActor)
	if err != nil {
		return err
	}
	return printAgreement(stdout, *asJSON, fmt.Sprintf("%s declines the agreement for %s", pos[0], pos[1]), v)
}

func agreementList(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("agreement list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if _, err := parseArgs(fs, args, 0, "agreement list [--json]"); err != nil {
		return err
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	list, err := cat.Agreements(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return PrintJSON(stdout, list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(stdout, "No agreements proposed yet.")
		return err
	}
	for _, a := range list {
		fmt.Fprintf(stdout, "%s (%s): proposed by %s on %s; agreed by %d: %s\n", a.Service, a.Category, a.ProposedBy,
			a.ProposedAt.Format("2006-01-02"), len(a.EndorsedBy), strings.Join(a.EndorsedBy, ", "))
		for _, an := range a.Answers {
			line := fmt.Sprintf("  %s %s on %s", an.Org, an.Decision, an.At.Format("2006-01-02"))
			if an.Decision == catalog.Declined {
				line += ": " + strings.ReplaceAll(an.Reason, "\n", " ")
			}
			fmt.Fprintln(stdout, line)
		}
	}
	return nil
}
