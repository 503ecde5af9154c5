package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestPrepared: statements run through Tx.Prepared behave as the
// transaction's own (placeholders rebound, results, rollback), however
// many transactions on however many pooled connections run them at once,
// and a statement that does not prepare reports its error.
func TestPrepared(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE p (k TEXT PRIMARY KEY, n BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					errs <- db.InTx(ctx, func(tx *store.Tx) error {
						q := tx.Prepared()
						if _, err := q.ExecContext(ctx, `INSERT INTO p (k, n) VALUES (?, ?)`, fmt.Sprintf("%d-%d", w, i), i); err != nil {
							return err
						}
						var n int
						if err := q.QueryRowContext(ctx, `SELECT n FROM p WHERE k = ?`, fmt.Sprintf("%d-%d", w, i)).Scan(&n); err != nil || n != i {
							return fmt.Errorf("read back %d: %d %v", i, n, err)
						}
						return nil
					})
				}
			}()
		}
		go func() { wg.Wait(); close(errs) }()
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rolledBack := errors.New("roll back")
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Prepared().ExecContext(ctx, `INSERT INTO p (k, n) VALUES (?, ?)`, "gone", 1); err != nil {
				return err
			}
			return rolledBack
		})
		if !errors.Is(err, rolledBack) {
			t.Fatalf("rolled-back transaction: %v", err)
		}
		var rows int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM p`).Scan(&rows)
		if rows != 100 {
			t.Errorf("%d rows, want 100 (and none from the rolled-back transaction)", rows)
		}
		db.InTx(ctx, func(tx *store.Tx) error {
			q := tx.Prepared()
			if _, err := q.ExecContext(ctx, `INSERT INTO nowhere VALUES (?)`, 1); err == nil {
				t.Error("Exec of a statement on a missing table: no error")
			}
			return nil
		})
		db.InTx(ctx, func(tx *store.Tx) error {
			var n int
			if err := tx.Prepared().QueryRowContext(ctx, `SELECT n FROM nowhere WHERE k = ?`, "a").Scan(&n); err == nil || errors.Is(err, sql.ErrNoRows) {
				t.Errorf("QueryRow of a statement on a missing table: %v", err)
			}
			return nil
		})
	})
}
