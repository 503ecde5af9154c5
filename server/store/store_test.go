package store_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

func TestMigrateIsIdempotentAndOrdered(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		steps := []store.Step{
			{Version: 1, SQL: `CREATE TABLE things (id TEXT PRIMARY KEY, note TEXT NOT NULL)`},
			{Version: 2, SQL: `ALTER TABLE things ADD COLUMN n INTEGER NOT NULL DEFAULT 0`},
		}
		for i := 0; i < 2; i++ {
			if err := db.Migrate(ctx, "things", steps); err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO things (id, note, n) VALUES (?, ?, ?)`, "a", "what's ? this", 3); err != nil {
			t.Fatal(err)
		}
		var note string
		var n int
		if err := db.QueryRowContext(ctx, `SELECT note, n FROM things WHERE id = ? AND note <> '?'`, "a").Scan(&note, &n); err != nil {
			t.Fatal(err)
		}
		if note != "what's ? this" || n != 3 {
			t.Fatalf("got %q %d", note, n)
		}
		err := db.Migrate(ctx, "bad", []store.Step{{Version: 2, SQL: `SELECT 1`}})
		if err == nil || !strings.Contains(err.Error(), "versions must run") {
			t.Fatalf("out-of-order steps: got %v", err)
		}
	})
}

func TestFailedStepLeavesNoTrace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		bad := []store.Step{{Version: 1, SQL: `CREATE TABLE ok1 (id TEXT); CREATE TABLE broken (`}}
		if err := db.Migrate(ctx, "d", bad); err == nil {
			t.Fatal("a broken step must fail")
		}
		good := []store.Step{{Version: 1, SQL: `CREATE TABLE ok1 (id TEXT)`}}
		if err := db.Migrate(ctx, "d", good); err != nil {
			t.Fatalf("after a failed step the same version must apply cleanly: %v", err)
		}
	})
}

func TestRebind(t *testing.T) {
	cases := []struct{ in, want string }{
		{`SELECT ? , ?`, `SELECT $1 , $2`},
		{`SELECT '?' , ?`, `SELECT '?' , $1`},
		{`SELECT 1`, `SELECT 1`},
	}
	ctx := context.Background()
	_ = ctx
	for _, c := range cases {
		if got := store.RebindFor(store.Postgres, c.in); got != c.want {
			t.Errorf("rebind %q: got %q want %q", c.in, got, c.want)
		}
		if got := store.RebindFor(store.SQLite, c.in); got != c.in {
			t.Errorf("sqlite must not rebind %q: got %q", c.in, got)
		}
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	path := t.TempDir() + "/hub.db"
	db, err := store.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), `CREATE TABLE x (a TEXT)`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; want no access for group or others", p, fi.Mode().Perm())
		}
	}
}

// Hubs started at the same moment on one PostgreSQL database all come up:
// before the advisory lock the losers failed with "type schema_migrations
// already exists" or a duplicate key on a step's table.
func TestConcurrentMigrationsAllSucceed(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	steps := []store.Step{
		{Version: 1, SQL: `CREATE TABLE race_a (id TEXT PRIMARY KEY)`},
		{Version: 2, SQL: `CREATE TABLE race_b (id TEXT PRIMARY KEY); INSERT INTO race_b (id) VALUES ('once')`},
	}
	const n = 6
	dbs := make([]*store.DB, n)
	for i := range dbs {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	errs := make(chan error, n)
	start := make(chan struct{})
	for _, db := range dbs {
		go func() {
			<-start
			for _, domain := range []string{"first", "second"} {
				if err := db.Migrate(ctx, domain, []store.Step{{Version: 1, SQL: `CREATE TABLE IF NOT EXISTS ` + domain + `_t (id TEXT)`}}); err != nil {
					errs <- err
					return
				}
			}
			errs <- db.Migrate(ctx, "race", steps)
		}()
	}
	close(start)
	for range dbs {
		if err := <-errs; err != nil {
			t.Errorf("a concurrent migration failed: %v", err)
		}
	}
	var rows int
	if err := dbs[0].QueryRowContext(ctx, `SELECT COUNT(*) FROM race_b`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("step 2 ran %d times, want once", rows)
	}
}
