package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/detour-project/detour/server/hub"
)

func init() {
	AddAdmin(AdminCommand{
		Path:    "key move-to-db",
		Usage:   "[--json]   (with --master-key-file)",
		Summary: "move this hub's signing keys (DATA/keys) into the database and reseal its issuer keys with the master key, for a cluster",
		Run:     keyMoveToDB,
		Configure: func(cfg *hub.Config) {
			cfg.MoveKeysToDB = true
		},
	})
}

// keyMoveToDB runs after the hub has imported DATA/keys into the database
// (hub.Config.MoveKeysToDB): it reseals the token issuer keys with the
// master key and renames the key folder, so no hub signs with it again by
// mistake; the helpers' pinned keys are the same keys, now shared.
func keyMoveToDB(ctx context.Context, h *hub.Hub, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("key move-to-db", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if _, err := parseArgs(fs, args, 0, "key move-to-db [--json]"); err != nil {
		return err
	}
	keys, err := h.WhitelistKeys()
	if err != nil {
		return err
	}
	active, err := keys.Active()
	if err != nil {
		return err
	}
	svc, err := h.OpenReports(ctx)
	if err != nil {
		return err
	}
	resealed, err := svc.ResealIssuerKeys(ctx)
	if err != nil {
		return err
	}
	moved := h.KeyFolder() + ".moved-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(h.KeyFolder(), moved); err != nil {
		return fmt.Errorf("keys are in the database, but renaming %s failed (move it away before starting a hub without --master-key-file): %w", h.KeyFolder(), err)
	}
	if *asJSON {
		return PrintJSON(stdout, struct {
			SigningKeys      []keyJSON `json:"signing_keys"`
			IssuerKeysSealed int       `json:"issuer_keys_resealed"`
			OldFolder        string    `json:"old_folder"`
			MasterKeyID      string    `json:"master_key_id"`
		}{keysJSON(active[0].ID, active), resealed, moved, h.MasterKey.ID()})
	}
	fmt.Fprintf(stdout, "%d signing key(s) now in the %s; %d issuer key(s) resealed with the master key\n",
		len(active), keys.Where(), resealed)
	for _, k := range active {
		fmt.Fprintf(stdout, "  %s\n", k.ID)
	}
	fmt.Fprintf(stdout, "the old key folder is now %s: delete it once every hub runs with --master-key-file\n", moved)
	return nil
}
