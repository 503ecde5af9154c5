package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

func adminDB(t *testing.T, dir, dsn, mkFile string, args ...string) (string, string, int) {
	t.Helper()
	pre := []string{"admin", "--data", dir, "--db", dsn}
	if mkFile != "" {
		pre = append(pre, "--master-key-file", mkFile)
	}
	var out, errb bytes.Buffer
	code := Main(append(pre, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func writeMasterKey(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(p, masterkey.Generate(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func signingKeyIDs(t *testing.T, out string) []string {
	t.Helper()
	var v struct {
		Keys []struct {
			KeyID string `json:"key_id"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("whitelist show --json: %s %v", out, err)
	}
	var ids []string
	for _, k := range v.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// A single hub's keys move into the database without changing: the keys its
// helpers pinned and the issuer keys their tokens answer to are the ones
// every hub of the cluster then uses.
func TestKeyMoveToDB(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			dsn := "sqlite:" + filepath.Join(dir, "detour.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			mk := writeMasterKey(t)
			must := func(out, errs string, code int) string {
				t.Helper()
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errs)
				}
				return out
			}
			must(adminDB(t, dir, dsn, "", "org", "add", "north", "--name", "North"))
			must(adminDB(t, dir, dsn, "", "enrol-code", "create", "north"))
			before := signingKeyIDs(t, must(adminDB(t, dir, dsn, "", "whitelist", "show", "--json")))

			// Given the master key before the move, a hub refuses rather
			// than sign with a new key its helpers never pinned.
			_, errs, code := adminDB(t, dir, dsn, mk, "whitelist", "show")
			if code == 0 || !strings.Contains(errs, "key move-to-db") {
				t.Fatalf("master key before the move: %d %s", code, errs)
			}
			_, errs, code = adminDB(t, dir, dsn, "", "key", "move-to-db")
			if code == 0 || !strings.Contains(errs, "needs --master-key-file") {
				t.Fatalf("move without a master key: %d %s", code, errs)
			}
			out := must(adminDB(t, dir, dsn, mk, "key", "move-to-db", "--json"))
			var moved struct {
				Resealed  int    `json:"issuer_keys_resealed"`
				OldFolder string `json:"old_folder"`
			}
			if err := json.Unmarshal([]byte(out), &moved); err != nil || moved.Resealed != 1 {
				t.Fatalf("move-to-db: %s %v", out, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "keys")); !os.IsNotExist(err) {
				t.Fatalf("the key folder must be renamed away: %v", err)
			}

			// Another hub, with an empty data folder and the same file,
			// signs with the same keys and reads the issuer key.
			other := t.TempDir()
			after := signingKeyIDs(t, must(adminDB(t, other, dsn, mk, "whitelist", "show", "--json")))
			if strings.Join(after, ",") != strings.Join(before, ",") {
				t.Fatalf("keys changed in the move: %v then %v", before, after)
			}
			must(adminDB(t, other, dsn, mk, "enrol-code", "create", "north"))
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM issuer_keys WHERE private_key NOT LIKE 'mk1:%'`).Scan(&n)
			if n != 0 {
				t.Fatalf("%d issuer key(s) not sealed with the master key", n)
			}

			for _, c := range []struct {
				name, mk, want string
			}{
				{"no master key", "", "start this hub with --master-key-file"},
				{"another master key", writeMasterKey(t), "every hub needs the same file"},
			} {
				_, errs, code := adminDB(t, t.TempDir(), dsn, c.mk, "whitelist", "show")
				if code == 0 || !strings.Contains(errs, c.want) {
					t.Errorf("%s: %d %s", c.name, code, errs)
				}
			}
			short := filepath.Join(t.TempDir(), "short")
			os.WriteFile(short, []byte("too short"), 0o600)
			if _, errs, code := adminDB(t, t.TempDir(), dsn, short, "whitelist", "show"); code == 0 || !strings.Contains(errs, "at least 32") {
				t.Errorf("short master key: %d %s", code, errs)
			}
		})
	}
}
