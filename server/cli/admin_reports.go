package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/detour-project/detour/server/hub"
)

// Enrolment codes: create (the code is printed once; only its hash is
// kept), list, revoke.
func init() {
	AddAdmin(AdminCommand{
		Path: "enrol-code create", Usage: "ORG [--json]",
		Summary: "make an enrolment code for an organisation (printed once)",
		Run: func(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
			fs, asJSON := reportsJSONFlag("enrol-code create")
			rest, err := reportsArgs(fs, args)
			if err != nil {
				return err
			}
			if len(rest) != 1 {
				return fmt.Errorf("usage: enrol-code create ORG [--json]")
			}
			svc, err := h.OpenReports(ctx)
			if err != nil {
				return err
			}
			code, id, err := svc.CreateCode(ctx, rest[0])
			if err != nil {
				return err
			}
			if *asJSON {
				return PrintJSON(stdout, map[string]string{"code": code, "id": id, "org": rest[0]})
			}
			fmt.Fprintf(stdout, "%s\n", code)
			fmt.Fprintf(stdout, "(id %s, organisation %s; this code is shown only now: `detour enrol --hub URL --code %s`)\n", id, rest[0], code)
			return nil
		},
	})
	AddAdmin(AdminCommand{
		Path: "enrol-code list", Usage: "[ORG] [--json]",
		Summary: "list enrolment codes (ids, never the codes)",
		Run: func(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
			fs, asJSON := reportsJSONFlag("enrol-code list")
			rest, err := reportsArgs(fs, args)
			if err != nil {
				return err
			}
			if len(rest) > 1 {
				return fmt.Errorf("usage: enrol-code list [ORG] [--json]")
			}
			org := ""
			if len(rest) == 1 {
				org = rest[0]
			}
			svc, err := h.OpenReports(ctx)
			if err != nil {
				return err
			}
			codes, err := svc.ListCodes(ctx, org)
			if err != nil {
				return err
			}
			if *asJSON {
				return PrintJSON(stdout, codes)
			}
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tORG\tCREATED\tUSES\tREVOKED")
			for _, c := range codes {
				rev := "-"
				if c.RevokedAt != "" {
					rev = c.RevokedAt
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.ID, c.Org, c.CreatedAt, c.Uses, rev)
			}
			return tw.Flush()
		},
	})
	AddAdmin(AdminCommand{
		Path: "enrol-code revoke", Usage: "CODE|ID",
		Summary: "revoke an enrolment code (enrolled devices keep working)",
		Run: func(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
			if len(args) != 1 {
				return fmt.Errorf("usage: enrol-code revoke CODE|ID")
			}
			svc, err := h.OpenReports(ctx)
			if err != nil {
				return err
			}
			c, err := svc.RevokeCode(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s (organisation %s, used %d times)\n", c.ID, c.Org, c.Uses)
			return nil
		},
	})
}

func reportsJSONFlag(name string) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.Bool("json", false, "machine-readable output")
}

// reportsArgs parses flags that may come before or after the
// positional arguments ("create ORG --json" and "create --json ORG").
func reportsArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}
