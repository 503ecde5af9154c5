package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/detour-project/detour/server/catalog"
)

// printPreview prints what `catalog import --dry-run` found.
func printPreview(w io.Writer, asJSON bool, p catalog.Preview) error {
	if asJSON {
		return PrintJSON(w, map[string]any{"dry_run": true, "preview": p})
	}
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "none"
		}
		return strings.Join(ids, ", ")
	}
	fmt.Fprintf(w, "dry run: nothing changed\nwould add %d services: %s\nwould replace %d services: %s\n",
		len(p.Added), list(p.Added), len(p.Changed), list(p.Changed))
	fmt.Fprintf(w, "would remove %d services: %s (and %d of their policies)\n", len(p.Removed), list(p.Removed), p.Policies)
	return nil
}
