package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"
)

// Step is one migration of one domain. SQL runs on both engines unless the
// dialect-specific field is set. Steps are numbered from 1 and never edited
// once released: append a new step instead.
type Step struct {
	Version  int
	SQL      string // both engines
	SQLite   string // overrides SQL on SQLite
	Postgres string // overrides SQL on PostgreSQL
}

// Migrate applies domain's steps that have not run yet, each in its own
// transaction together with its bookkeeping row, so a crash mid-way leaves a
// consistent, resumable state.
//
// Several hubs may start at the same moment on one database. On SQLite they
// serialise on the write lock (BEGIN IMMEDIATE). On PostgreSQL the whole
// run holds a session advisory lock keyed by the schema, because concurrent
// DDL there does not serialise: two `CREATE TABLE IF NOT EXISTS` at once fail
// with "type ... already exists", and two runs of one step would both try
// to create its tables. The lock is released when Migrate returns, or by
// the server if this process dies holding it.
func (d *DB) Migrate(ctx context.Context, domain string, steps []Step) error {
	if d.dialect == Postgres {
		unlock, err := d.migrationLock(ctx)
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", domain, err)
		}
		defer unlock()
	}
	return d.migrate(ctx, domain, steps)
}

// migrationLockKey is the first half of the advisory lock's key (the second
// is the schema's hash), chosen so it does not collide with other users of
// advisory locks on a shared server: "detr" in ASCII.
const migrationLockKey = 0x64657472

// migrationLock takes the schema's migration lock on a connection of its
// own (advisory locks belong to a session) and returns its release.
func (d *DB) migrationLock(ctx context.Context) (func(), error) {
	conn, err := d.sql.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	const key = `hashtext(COALESCE(current_schema(), ''))`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, `+key+`)`, migrationLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		// Unlock even when ctx has ended; if that fails, closing the
		// connection ends the session, which releases the lock.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1, `+key+`)`, migrationLockKey); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) // discard the session
		}
		conn.Close()
	}, nil
}

func (d *DB) migrate(ctx context.Context, domain string, steps []Step) error {
	if _, err := d.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		domain TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (domain, version))`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	for i, s := range steps {
		if s.Version != i+1 {
			return fmt.Errorf("store: %s: step %d has version %d; versions must run 1, 2, 3...", domain, i+1, s.Version)
		}
		q := s.SQL
		if d.dialect == SQLite && s.SQLite != "" {
			q = s.SQLite
		}
		if d.dialect == Postgres && s.Postgres != "" {
			q = s.Postgres
		}
		err := d.InTx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE domain = ? AND version = ?`, domain, s.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("step %d: %w", s.Version, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (domain, version) VALUES (?, ?)`, domain, s.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", domain, err)
		}
	}
	return nil
}
