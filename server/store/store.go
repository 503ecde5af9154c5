// Package store opens the hub's database (SQLite by default, PostgreSQL at
// scale) and runs each domain's versioned migrations. It hides the two
// differences callers would otherwise see: placeholders (write `?`; they are
// rebound to `$n` for PostgreSQL) and the DSN. Each domain package (catalog,
// reports, aggregates, dashboard) owns its tables and its SQL, written in the
// subset both engines accept, with per-dialect DDL where they differ.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// Dialect names the database engine.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the hub's database handle.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	dsn     string // PostgreSQL: for the listener's own connection

	// OnError, if set, hears of errors that have no caller to return to
	// (a listener's lost connection), for metrics and logs.
	OnError func(error)

	errs atomic.Int64 // see Errors

	stmts sync.Map // query text -> *sql.Stmt, for Tx.Prepared
}

// Errors counts the database's failures seen by this handle (a statement,
// a begin or commit, a lost listener), for the hub's metrics. A cancelled
// request, a missing row and a refused constraint are the caller's
// business, not the database's, and are not counted.
func (d *DB) Errors() int64 { return d.errs.Load() }

// count records err if it is a failure of the database and returns it.
func (d *DB) count(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && strings.HasPrefix(pg.Code, "23") { // integrity constraint violation
		return err
	}
	d.errs.Add(1)
	return err
}

// Dialect says which engine this is.
func (d *DB) Dialect() Dialect { return d.dialect }

// Open opens a database from a DSN: `sqlite:PATH` (created, WAL) or
// `postgres://...`.
func Open(ctx context.Context, dsn string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" {
			return nil, errors.New("store: sqlite: DSN has no path")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: sqlite: %w", err)
		}
		// The database holds device credential hashes and reports: create it
		// private before SQLite does (SQLite would create it 0644). The WAL
		// and shared-memory files inherit the main file's mode.
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			f.Close()
		}
		// temp_store(MEMORY) keeps statement journals (which a multi-row
		// INSERT ... ON CONFLICT writes for every page it touches) off
		// disk; mmap_size lets readers and the writer read pages from the
		// mapped file instead of a pread each; cache_size (KiB, per
		// connection) holds the hot index pages of report intake. Together
		// about a quarter of a report group's cost (BenchmarkStoreGroup).
		q := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)" +
			"&_pragma=temp_store(MEMORY)&_pragma=mmap_size(268435456)&_pragma=cache_size(-16384)&_txlock=immediate"
		db, err := sql.Open("sqlite", "file:"+path+q)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
		}
		// One writer at a time is SQLite's rule; a small pool keeps readers
		// concurrent under WAL without piling up writers on the busy timeout.
		db.SetMaxOpenConns(8)
		d := &DB{sql: db, dialect: SQLite}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
		}
		return d, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		return &DB{sql: db, dialect: Postgres, dsn: dsn}, nil
	}
	return nil, fmt.Errorf("store: DSN %q: want sqlite:PATH or postgres://...", dsn)
}

// Close closes the database.
func (d *DB) Close() error {
	d.closeStmts()
	return d.sql.Close()
}

// SQL is the underlying handle, for what the wrappers below do not cover.
func (d *DB) SQL() *sql.DB { return d.sql }

// Rebind turns `?` placeholders into `$1, $2, ...` for PostgreSQL. A `?`
// inside a quoted string literal is left alone.
func (d *DB) Rebind(q string) string { return RebindFor(d.dialect, q) }

// RebindFor rewrites placeholders of q for dialect.
func RebindFor(dialect Dialect, q string) string {
	if dialect != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n, inStr := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inStr = !inStr
			b.WriteByte(c)
		case c == '?' && !inStr:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Querier is what both DB and Tx offer, so a domain function can run inside
// another domain's transaction (a report and its counters in one commit).
type Querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	Rebind(q string) string
	Dialect() Dialect
}

var _ Querier = (*DB)(nil)

func (d *DB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r, err := d.sql.ExecContext(ctx, d.Rebind(q), args...)
	return r, d.count(err)
}
func (d *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r, err := d.sql.QueryContext(ctx, d.Rebind(q), args...)
	return r, d.count(err)
}
func (d *DB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.sql.QueryRowContext(ctx, d.Rebind(q), args...)
}

// Tx is a transaction with the same rebinding.
type Tx struct {
	tx *sql.Tx
	db *DB
}

func (t *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	r, err := t.tx.ExecContext(ctx, t.db.Rebind(q), args...)
	return r, t.db.count(err)
}
func (t *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r, err := t.tx.QueryContext(ctx, t.db.Rebind(q), args...)
	return r, t.db.count(err)
}
func (t *Tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.Rebind(q), args...)
}
func (t *Tx) Rebind(q string) string { return t.db.Rebind(q) }
func (t *Tx) Dialect() Dialect       { return t.db.dialect }

// InTx runs f in a transaction, committing if it returns nil. SQLite
// transactions are BEGIN IMMEDIATE (see the DSN), so writers queue on the
// busy timeout instead of failing on upgrade.
func (d *DB) InTx(ctx context.Context, f func(*Tx) error) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", d.count(err))
	}
	if err := f(&Tx{tx: tx, db: d}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", d.count(err))
	}
	return nil
}

// Lock takes a lock named name for the rest of the transaction, so that
// processes sharing the database (several hubs, an admin command) do one
// check-then-write at a time: "is there a primary signing key? if not, make
// one". On PostgreSQL it is a transaction advisory lock keyed by the name
// and the schema; on SQLite the transaction already holds the database's
// write lock (BEGIN IMMEDIATE), which serialises every writer.
func (t *Tx) Lock(ctx context.Context, name string) error {
	if t.db.dialect != Postgres {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), hashtext(COALESCE(current_schema(), '')))`, name); err != nil {
		return fmt.Errorf("store: lock %s: %w", name, err)
	}
	return nil
}
