package store

import (
	"context"
	"fmt"
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
// consistent, resumable state. Two hubs starting at once serialise on the
// write lock (SQLite) or on the primary key (PostgreSQL: the loser fails and
// is told to retry).
func (d *DB) Migrate(ctx context.Context, domain string, steps []Step) error {
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
