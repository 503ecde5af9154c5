package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/server/reports"
)

// Enrolment codes: create (the code is printed once; only its hash is
// kept), list, revoke.
func init() {
	AddAdmin(AdminCommand{
		Path: "enrol-code create", Usage: "ORG [--devices N] [--per-hour N] [--expires DURATION] [--json]",
		Summary: "make an enrolment code for an organisation (printed once); it enrols at most N devices",
		Run: func(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
			const usage = "usage: enrol-code create ORG [--devices N] [--per-hour N] [--expires DURATION] [--json]"
			fs, asJSON := reportsJSONFlag("enrol-code create")
			devices := fs.Int64("devices", reports.DefaultCodeDevices, "devices the code may enrol")
			perHour := fs.Int64("per-hour", reports.DefaultCodePerHour, "enrolments an hour at most")
			expires := fs.String("expires", "", "how long the code enrols, e.g. 72h or 30d (default: until revoked)")
			rest, err := reportsArgs(fs, args)
			if err != nil {
				return fmt.Errorf("%w\n%s", err, usage)
			}
			if len(rest) != 1 {
				return errors.New(usage)
			}
			l := reports.Limits{Devices: *devices, PerHour: *perHour}
			if *expires != "" {
				d, err := ParseDuration(*expires)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				l.Expires = time.Now().Add(d)
			}
			svc, err := h.OpenReports(ctx)
			if err != nil {
				return err
			}
			code, id, err := svc.CreateCodeWith(ctx, rest[0], l)
			if err != nil {
				return err
			}
			if *asJSON {
				out := map[string]any{"code": code, "id": id, "org": rest[0], "max_devices": l.Devices, "per_hour": l.PerHour}
				if !l.Expires.IsZero() {
					out["expires_at"] = l.Expires.UTC().Format(time.RFC3339)
				}
				return PrintJSON(stdout, out)
			}
			until := "until revoked"
			if !l.Expires.IsZero() {
				until = "until " + l.Expires.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\n", code)
			fmt.Fprintf(stdout, "(id %s, organisation %s, at most %d devices and %d an hour, %s; this code is shown only now: `detour enrol --hub URL --code %s`)\n",
				id, rest[0], l.Devices, l.PerHour, until, code)
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
			fmt.Fprintln(tw, "ID\tORG\tCREATED\tDEVICES\tLIMIT\tREVOKED DEVICES\tTOKENS TODAY\tEXPIRES\tREVOKED")
			dash := func(s string) string {
				if s == "" {
					return "-"
				}
				return s
			}
			for _, c := range codes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", c.ID, c.Org, c.CreatedAt, c.Uses, c.MaxDevices,
					c.Revoked, c.TokensToday, dash(c.ExpiresAt), dash(c.RevokedAt))
			}
			return tw.Flush()
		},
	})
	AddAdmin(AdminCommand{
		Path: "enrol-code revoke", Usage: "CODE|ID [--devices]",
		Summary: "revoke an enrolment code; with --devices, every device it enrolled too (their token requests are refused)",
		Run: func(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
			fs := flag.NewFlagSet("enrol-code revoke", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			devices := fs.Bool("devices", false, "revoke the devices it enrolled too")
			rest, err := reportsArgs(fs, args)
			if err != nil || len(rest) != 1 {
				return fmt.Errorf("usage: enrol-code revoke CODE|ID [--devices]")
			}
			svc, err := h.OpenReports(ctx)
			if err != nil {
				return err
			}
			c, err := svc.RevokeCode(ctx, rest[0], *devices)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked %s (organisation %s, used %d times)", c.ID, c.Org, c.Uses)
			if *devices {
				fmt.Fprintf(stdout, "; %d devices revoked", c.Revoked)
			} else {
				fmt.Fprint(stdout, "; the devices it enrolled keep working (--devices revokes them)")
			}
			fmt.Fprintln(stdout)
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
