package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/server/signing"
	"github.com/detour-project/detour/shared/whitelist"
)

// adminActor names admin-command changes in the audit trail.
const adminActor = "admin-cli"

func init() {
	AddAdmin(AdminCommand{Path: "org add", Usage: "ID --name NAME [--sector S] [--json]",
		Summary: "add an organisation (publishes a new whitelist version)", Run: orgAdd})
	AddAdmin(AdminCommand{Path: "policy set", Usage: "ORG SERVICE approved|blocked|restricted|unknown [--alternatives ID,ID] [--note TEXT] [--json]",
		Summary: "set an organisation's policy for a service (publishes a new version)", Run: policySet})
	AddAdmin(AdminCommand{Path: "catalog import", Usage: "FILE|- [--examples] [--prune] [--dry-run] [--json]",
		Summary: "merge services, organisations and policies from JSON; --examples adds the fictional examples", Run: catalogImport})
	AddAdmin(AdminCommand{Path: "catalog export", Usage: "",
		Summary: "print the catalog as JSON (the import format)", Run: catalogExport})
	AddAdmin(AdminCommand{Path: "key rotate", Usage: "[--grace 336h] [--json]",
		Summary: "make a new whitelist signing key; the old one signs until the grace period ends", Run: keyRotate})
	AddAdmin(AdminCommand{Path: "whitelist show", Usage: "[--json]",
		Summary: "the latest whitelist version, its dates, counts and signing keys", Run: whitelistShow})
}

// parseArgs parses flags wherever they appear among the positional
// arguments ("org add ID --name N" as well as "org add --name N ID"), and
// checks the number of positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, want int, usage string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w (usage: %s)", err, usage)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if want >= 0 && len(pos) != want {
		return nil, fmt.Errorf("want %d argument(s), got %d (usage: %s)", want, len(pos), usage)
	}
	return pos, nil
}

// versionResult is what a change prints with --json.
type versionResult struct {
	Version int64 `json:"version"`
}

func printVersion(w io.Writer, asJSON bool, what string, v int64) error {
	if asJSON {
		return PrintJSON(w, versionResult{Version: v})
	}
	_, err := fmt.Fprintf(w, "%s; whitelist version %d\n", what, v)
	return err
}

func orgAdd(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("org add", flag.ContinueOnError)
	name := fs.String("name", "", "the organisation's name")
	sector := fs.String("sector", "", "its sector, e.g. local-government, health")
	asJSON := fs.Bool("json", false, "machine-readable output")
	pos, err := parseArgs(fs, args, 1, "org add ID --name NAME [--sector S]")
	if err != nil {
		return err
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	v, err := cat.AddOrganisation(ctx, whitelist.Organisation{ID: pos[0], Name: *name, Sector: *sector}, adminActor)
	if err != nil {
		return err
	}
	return printVersion(stdout, *asJSON, "added organisation "+pos[0], v)
}

func policySet(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("policy set", flag.ContinueOnError)
	alts := fs.String("alternatives", "", "approved alternatives, in order: service ids separated by commas")
	note := fs.String("note", "", "a note for staff (shown beside the suggestion)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	pos, err := parseArgs(fs, args, 3, "policy set ORG SERVICE STATUS [--alternatives ID,ID] [--note TEXT]")
	if err != nil {
		return err
	}
	p := whitelist.Policy{Org: pos[0], Service: pos[1], Status: pos[2], Alternatives: []string{}, Note: *note}
	for _, a := range strings.Split(*alts, ",") {
		if a = strings.TrimSpace(a); a != "" {
			p.Alternatives = append(p.Alternatives, a)
		}
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	v, err := cat.SetPolicy(ctx, p, adminActor)
	if err != nil {
		return err
	}
	return printVersion(stdout, *asJSON, fmt.Sprintf("policy %s/%s set to %s", p.Org, p.Service, p.Status), v)
}

func catalogImport(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("catalog import", flag.ContinueOnError)
	examples := fs.Bool("examples", false, "also import the fictional example organisations and policies")
	prune := fs.Bool("prune", false, "also remove the services the file does not list (with their policies)")
	dryRun := fs.Bool("dry-run", false, "say what the import would add, replace and remove, and change nothing")
	asJSON := fs.Bool("json", false, "machine-readable output")
	pos, err := parseArgs(fs, args, -1, "catalog import FILE|- [--examples] [--prune] [--dry-run]")
	if err != nil {
		return err
	}
	if len(pos) > 1 || (len(pos) == 0 && !*examples) {
		return errors.New("want one FILE (or - for standard input), or --examples (usage: catalog import FILE|- [--examples])")
	}
	b := &catalog.Bundle{}
	if len(pos) == 1 {
		var r io.Reader = os.Stdin
		if pos[0] != "-" {
			f, err := os.Open(pos[0])
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		if b, err = catalog.ParseBundle(r); err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
	}
	if *examples {
		ex, err := hub.ExampleCatalog()
		if err != nil {
			return err
		}
		b.Organisations = append(b.Organisations, ex.Organisations...)
		b.Policies = append(b.Policies, ex.Policies...)
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	if *dryRun {
		p, err := cat.PreviewImport(ctx, b, *prune)
		if err != nil {
			return err
		}
		return printPreview(stdout, *asJSON, p)
	}
	if *prune {
		v, p, err := cat.ImportPrune(ctx, b, adminActor)
		if err != nil {
			return err
		}
		return printVersion(stdout, *asJSON, fmt.Sprintf("imported %d services, %d organisations, %d policies; removed %d services (%s) and %d of their policies",
			len(b.Services), len(b.Organisations), len(b.Policies), len(p.Removed), strings.Join(p.Removed, ", "), p.Policies), v)
	}
	v, err := cat.Import(ctx, b, adminActor)
	if err != nil {
		return err
	}
	return printVersion(stdout, *asJSON, fmt.Sprintf("imported %d services, %d organisations, %d policies",
		len(b.Services), len(b.Organisations), len(b.Policies)), v)
}

func catalogExport(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("catalog export takes no arguments (got %q)", args)
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	b, err := cat.Export(ctx)
	if err != nil {
		return err
	}
	return PrintJSON(stdout, b)
}

func keyRotate(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("key rotate", flag.ContinueOnError)
	grace := fs.Duration("grace", signing.DefaultGrace, "how long the old key keeps signing and stays published")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if _, err := parseArgs(fs, args, 0, "key rotate [--grace 336h]"); err != nil {
		return err
	}
	if *grace <= 0 {
		return errors.New("--grace must be positive")
	}
	kr, err := h.WhitelistKeys()
	if err != nil {
		return err
	}
	nk, err := kr.Rotate(*grace)
	if err != nil {
		return err
	}
	keys, err := kr.Active()
	if err != nil {
		return err
	}
	if *asJSON {
		return PrintJSON(stdout, keysJSON(nk.ID, keys))
	}
	fmt.Fprintf(stdout, "new primary key %s\n", nk.ID)
	for _, k := range keys[1:] {
		fmt.Fprintf(stdout, "  %s still signs until %s\n", k.ID, k.RetireAfter.Format(time.RFC3339))
	}
	return nil
}

type keyJSON struct {
	whitelist.PublicKey
	Primary     bool   `json:"primary"`
	Created     string `json:"created"`
	RetireAfter string `json:"retire_after,omitempty"`
}

func keysJSON(primary string, keys []signing.Key) []keyJSON {
	out := make([]keyJSON, len(keys))
	for i, k := range keys {
		out[i] = keyJSON{PublicKey: whitelist.Export(k.Public), Primary: k.ID == primary, Created: k.Created.Format(time.RFC3339)}
		if !k.RetireAfter.IsZero() {
			out[i].RetireAfter = k.RetireAfter.Format(time.RFC3339)
		}
	}
	return out
}

func whitelistShow(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("whitelist show", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if _, err := parseArgs(fs, args, 0, "whitelist show [--json]"); err != nil {
		return err
	}
	cat, err := h.CatalogStore()
	if err != nil {
		return err
	}
	if err := cat.Refresh(ctx); err != nil {
		return err
	}
	d := cat.Document()
	kr, err := h.WhitelistKeys()
	if err != nil {
		return err
	}
	keys, err := kr.Active()
	if err != nil {
		return err
	}
	byCategory := map[string]int{}
	for _, s := range d.Services {
		byCategory[s.Category]++
	}
	byStatus := map[string]int{}
	for _, p := range d.Policies {
		byStatus[p.Status]++
	}
	if *asJSON {
		return PrintJSON(stdout, struct {
			Version       int64          `json:"version"`
			IssuedAt      time.Time      `json:"issued_at"`
			ExpiresAt     time.Time      `json:"expires_at"`
			Services      int            `json:"services"`
			Categories    map[string]int `json:"categories"`
			Organisations int            `json:"organisations"`
			Policies      int            `json:"policies"`
			Statuses      map[string]int `json:"statuses"`
			Keys          []keyJSON      `json:"keys"`
		}{d.Version, d.IssuedAt, d.ExpiresAt, len(d.Services), byCategory, len(d.Organisations), len(d.Policies), byStatus, keysJSON(keys[0].ID, keys)})
	}
	fmt.Fprintf(stdout, "whitelist version %d, issued %s, expires %s\n", d.Version,
		d.IssuedAt.Format(time.RFC3339), d.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintf(stdout, "%d services in %d categories: %s\n", len(d.Services), len(byCategory), counts(byCategory))
	fmt.Fprintf(stdout, "%d organisations, %d policies: %s\n", len(d.Organisations), len(d.Policies), counts(byStatus))
	for i, k := range keys {
		role := "primary"
		if i > 0 {
			role = "retiring " + k.RetireAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "signing key %s (%s)\n", k.ID, role)
	}
	return nil
}

func counts(m map[string]int) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
