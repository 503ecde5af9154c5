package reports

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detour-project/detour/server/aggregates"
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
// The counters are added last, once per group: each report's savepoint
// only stores the report and spends its token, and names the counter it
// adds to; after the last savepoint the group adds the sums, in key order,
// under one database-wide lock (store.Tx.Lock). Hubs sharing a PostgreSQL
// database otherwise deadlock: two groups add to the same few counter rows
// (one per day, organisation and need) in the order their reports arrived,
// each holding some rows until its commit, and PostgreSQL ends one of them
// after a second's wait, failing its whole group. Found by the cluster load
// test (test/hubcluster): with 3 hubs at 1,000 reports/s, almost every
// report timed out or failed and the database logged hundreds of deadlocks.
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
	f    func(context.Context, *store.Tx) (*aggregates.Key, error)
	done chan error
}

// countersLock serialises the counter additions of every hub's groups.
const countersLock = "report counters"

// groupTimeout bounds one group's transaction; it runs apart from any one
// request's context, since it carries other people's reports too.
const groupTimeout = 30 * time.Second

// do runs f (with the group's context) in the next group's transaction and returns once that
// transaction has committed (f's own error, or the commit's). A key f
// returns without an error is counted once, with the group's counters.
func (g *groupCommit) do(ctx context.Context, f func(context.Context, *store.Tx) (*aggregates.Key, error)) error {
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
		counts := map[aggregates.Key]int64{}
		for i, j := range group {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT report"); err != nil {
				return fmt.Errorf("reports: savepoint: %w", err)
			}
			var k *aggregates.Key
			if k, errs[i] = j.f(ctx, tx); errs[i] != nil {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT report"); err != nil {
					return fmt.Errorf("reports: rollback to savepoint: %w", err)
				}
			} else if k != nil {
				counts[*k]++
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT report"); err != nil {
				return fmt.Errorf("reports: release savepoint: %w", err)
			}
		}
		return addCounts(ctx, tx, counts)
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

// queued is how many jobs wait for the next group (for tests).
func (g *groupCommit) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// addCounts adds a group's counters in key order under countersLock.
func addCounts(ctx context.Context, tx *store.Tx, counts map[aggregates.Key]int64) error {
	if len(counts) == 0 {
		return nil
	}
	if err := tx.Lock(ctx, countersLock); err != nil {
		return fmt.Errorf("reports: counters: %w", err)
	}
	keys := make([]aggregates.Key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b aggregates.Key) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Org, b.Org), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Method, b.Method), cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.Need, b.Need))
	})
	for _, k := range keys {
		if err := aggregates.Increment(ctx, tx, k, counts[k]); err != nil {
			return err
		}
	}
	return nil
}
