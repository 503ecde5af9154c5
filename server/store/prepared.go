package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Prepared is a Querier over a transaction whose statements are prepared
// once per pooled connection and kept, for the few statements a hot path
// runs thousands of times a second (report intake: spending tokens,
// storing reports, adding counters). The SQLite driver otherwise parses
// and plans every statement on every call, which cost a sixth of the
// intake's time. PostgreSQL needs no help (pgx caches prepared statements
// per connection itself), so there it is the transaction unchanged.
//
// Every distinct text is kept for the life of the handle: use it only for
// a bounded set of statements (a multi-row insert of 1 to 64 rows is 64).
func (t *Tx) Prepared() Querier {
	if t.db.dialect != SQLite {
		return t
	}
	return preparedTx{t}
}

type preparedTx struct{ *Tx }

// stmt returns q prepared on the handle (database/sql prepares it on each
// connection the first time it runs there), bound to the transaction.
func (p preparedTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	d := p.db
	s, ok := d.stmts.Load(q)
	if !ok {
		prepared, err := d.sql.PrepareContext(ctx, d.Rebind(q))
		if err != nil {
			return nil, fmt.Errorf("store: prepare: %w", d.count(err))
		}
		var loaded bool
		if s, loaded = d.stmts.LoadOrStore(q, prepared); loaded {
			prepared.Close()
		}
	}
	return p.tx.StmtContext(ctx, s.(*sql.Stmt)), nil
}

func (p preparedTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	r, err := s.ExecContext(ctx, args...)
	return r, p.db.count(err)
}

func (p preparedTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := p.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	r, err := s.QueryContext(ctx, args...)
	return r, p.db.count(err)
}

func (p preparedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := p.stmt(ctx, q)
	if err != nil {
		// A Row cannot carry an error of ours: the unprepared path meets
		// the same one and reports it on Scan.
		return p.Tx.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

// closeStmts closes the statements Prepared kept.
func (d *DB) closeStmts() {
	d.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		d.stmts.Delete(k)
		return true
	})
}
