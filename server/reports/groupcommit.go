package reports

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detour-project/detour/server/store"
)

// groupCommit gathers the report transactions that arrive while one is
// committing into the next single database transaction ("group commit"), so
// a burst of reports pays for one BEGIN/COMMIT (and, on SQLite, one turn of
// the writer lock) instead of one each. Nothing is answered before the
// transaction that holds it has committed: each report's outcome is
// decided inside its own SAVEPOINT, so one refused report (a token spent on
// another report) rolls back alone and the rest of the group still commits,
// and a failed COMMIT fails every report of the group, which their clients
// then resend (the intake is idempotent).
//
// There is no standing goroutine: the first caller to find no group in
// flight commits one group (its own report and every report queued behind
// it), and hands any that queued meanwhile to a new goroutine, so no caller
// waits for more than its own group and an idle hub runs nothing.
type groupCommit struct {
	write func(ctx context.Context, f func(*store.Tx) error) error
	max   int // most reports in one transaction

	mu      sync.Mutex
	queue   []*commitJob
	running bool

	groups, reports atomic.Int64 // committed so far, for the tests and metrics
}

type commitJob struct {
	f    func(context.Context, *store.Tx) error
	done chan error
}

// groupTimeout bounds one group's transaction; it runs apart from any one
// request's context, since it carries other people's reports too.
const groupTimeout = 30 * time.Second

// do runs f (with the group's context) in the next group's transaction and returns once that
// transaction has committed (f's own error, or the commit's).
func (g *groupCommit) do(ctx context.Context, f func(context.Context, *store.Tx) error) error {
	j := &commitJob{f: f, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, j)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.commitNext()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The report still commits (or not) with its group; the client
		// that gave up resends, and a resend is a no-op.
		return ctx.Err()
	}
}

// commitNext commits one group and passes the lead on if more are queued.
func (g *groupCommit) commitNext() {
	g.mu.Lock()
	n := min(len(g.queue), g.max)
	group := g.queue[:n:n]
	g.queue = append([]*commitJob(nil), g.queue[n:]...)
	g.mu.Unlock()

	errs := make([]error, len(group))
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	err := g.write(ctx, func(tx *store.Tx) error {
		for i, j := range group {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT report"); err != nil {
				return fmt.Errorf("reports: savepoint: %w", err)
			}
			if errs[i] = j.f(ctx, tx); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT report"); err != nil {
					return fmt.Errorf("reports: rollback to savepoint: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT report"); err != nil {
				return fmt.Errorf("reports: release savepoint: %w", err)
			}
		}
		return nil
	})
	cancel()
	if err == nil {
		g.groups.Add(1)
		g.reports.Add(int64(len(group)))
	}
	for i, j := range group {
		if err != nil {
			j.done <- err
		} else {
			j.done <- errs[i]
		}
	}

	g.mu.Lock()
	more := len(g.queue) > 0
	if !more {
		g.running = false
	}
	g.mu.Unlock()
	if more {
		go g.commitNext()
	}
}
