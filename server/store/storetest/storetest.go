// Package storetest gives tests a fresh hub database on each engine: SQLite
// in a temporary folder, and PostgreSQL in a schema of its own on the server
// named by DETOUR_TEST_POSTGRES (`make test` starts one). In CI a missing
// PostgreSQL is a failure, not a skip.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/detour-project/detour/server/store"
)

// Each runs f as a subtest once per engine, each time on an empty database.
func Each(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}

// SQLite opens a fresh SQLite database that is removed after the test.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN returns a DSN for a fresh, empty schema on the test server
// (dropped after the test), or skips the test when there is no server
// outside CI.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("DETOUR_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DETOUR_TEST_POSTGRES is not set: run the tests with `make test`, which starts PostgreSQL")
		}
		t.Skip("no PostgreSQL: set DETOUR_TEST_POSTGRES (make test does)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := store.Open(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a fresh PostgreSQL schema (see PostgresDSN).
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
