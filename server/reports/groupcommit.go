package reports

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
)

// groupCommit gathers the reports that arrive while one group is
// committing into the next single database transaction ("group commit"), so
// a burst of reports pays for one BEGIN/COMMIT (and, on SQLite, one turn of
// the writer lock) instead of one each. Nothing is answered before the
// transaction that holds it has committed, and a failed transaction fails
// every report of the group, which their clients then resend (the intake is
// idempotent).
//
// A group is stored with a handful of statements whatever its size (see
// storeGroup): one multi-row insert spends every token together with the
// report it pays for, one query reads the tokens that were spent before,
// and the counters are added once per (day, org, service, method, vendor,
// need) key. Per-report statements and savepoints cost more than the rest
// of the intake together: the SQLite driver prepares each statement afresh,
// and a group of 8 reports took 36 statements where it now takes 6. Each
// report is still decided alone: a token already spent on another report is
// refused (409) without taking its neighbours down.
//
// The counters are added last, with aggregates.IncrementAll: each table's
// rows in key order, the tables in a fixed order (one statement a table on
// SQLite, one for all of them on PostgreSQL, where a group holds the
// cluster's hottest rows from that statement to its commit). Hubs sharing a PostgreSQL
// database otherwise deadlock: two groups add to the same few counter rows
// (one per day, organisation and need) in different orders, each holding
// some rows until its commit, and PostgreSQL ends one of them after a
// second's wait, failing its whole group. Found by the cluster load test
// (test/hubcluster): with 3 hubs at 1,000 reports/s, almost every report
// timed out or failed and the database logged hundreds of deadlocks. (A
// lock around every group's counters, tried first, held each group's
// hundred counter statements across the whole cluster and capped it near
// 560 reports/s on a loaded machine.) The tokens are spent in nonce order
// for the same reason: two hubs given the same resent tokens wait for each
// other's nonces the same way round.
//
// A group does not wait to fill up: the group that starts when the last
// one commits takes every report that queued meanwhile, which is what
// keeps the writer busy and the groups as large as the load makes them.
// Waiting for reports still being verified (up to 1 ms, as intake once
// did) made groups larger but fewer reports a second: on 2 cores the
// clients then moved in step, verifying together and then all waiting for
// one commit, so a core sat idle (BenchmarkReportAccept, 8 clients: about
// 3,900-4,300 reports/s with a 1 ms or an adaptive 5 ms wait, 5,300-5,600
// without).
//
// There is no standing goroutine: the first caller to find no group in
// flight commits one group (its own report and every report queued behind
// it), and hands any that queued meanwhile to one goroutine that commits
// group after group until the queue is empty (drain), so no caller waits
// for more than its own group and an idle hub runs nothing.
type groupCommit struct {
	write func(ctx context.Context, f func(*store.Tx) error) error
	max   int // most reports in one transaction

	// stored, if set, is called inside each group's transaction once its
	// reports are stored and before its counters are added; an error fails
	// the group (tests).
	stored func() error

	mu      sync.Mutex
	queue   []*commitJob
	running bool

	groups, reports atomic.Int64 // committed so far, for the tests and metrics
}

// commitJob is one checked, verified report waiting for its group.
type commitJob struct {
	r          Report
	id         string // hex SHA-256 of the canonical report and the nonce
	nonce      string // hex token nonce
	reportHash string // hex SHA-256 of the canonical report

	// Set by the group before done is closed.
	out  Outcome
	err  error
	done chan struct{}
}

// groupTimeout bounds one group's transaction; it runs apart from any one
// request's context, since it carries other people's reports too.
const groupTimeout = 30 * time.Second

// do stores j with the next group and returns once that group's transaction
// has committed: j's own outcome, or the transaction's error.
func (g *groupCommit) do(ctx context.Context, j *commitJob) (Outcome, error) {
	j.done = make(chan struct{})
	g.mu.Lock()
	g.queue = append(g.queue, j)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead && g.commitNext() {
		go g.drain()
	}
	select {
	case <-j.done:
		return j.out, j.err
	case <-ctx.Done():
		// The report still commits (or not) with its group; the client
		// that gave up resends, and a resend is a no-op.
		return 0, ctx.Err()
	}
}

// drain commits group after group until none is queued. One goroutine
// keeps the lead for as long as reports keep coming: a goroutine started
// for each group waited, on 2 busy cores, several milliseconds in the run
// queue behind the request goroutines (the HTTP server starts one per
// request) before it ran, and nothing committed meanwhile; a runtime trace
// put 31% of the scheduler latency of a 64-client run there.
func (g *groupCommit) drain() {
	for g.commitNext() {
	}
}

// commitNext commits one group and says whether more are queued; if not,
// it gives up the lead.
func (g *groupCommit) commitNext() (more bool) {
	g.mu.Lock()
	n := min(len(g.queue), g.max)
	group := g.queue[:n:n]
	g.queue = append([]*commitJob(nil), g.queue[n:]...)
	g.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	err := g.write(ctx, func(tx *store.Tx) error { return g.storeGroup(ctx, tx, group) })
	cancel()
	if err == nil {
		g.groups.Add(1)
		g.reports.Add(int64(len(group)))
	}
	for _, j := range group {
		if err != nil {
			j.out, j.err = 0, err
		}
		close(j.done)
	}

	g.mu.Lock()
	more = len(g.queue) > 0
	if !more {
		g.running = false
	}
	g.mu.Unlock()
	return more
}

// storeGroup spends the group's tokens, stores its new reports and adds
// their counters, setting each job's outcome. The first job with a nonce
// claims it; a later one in the same group with the same nonce is decided
// against the first, as if it came after the commit.
func (g *groupCommit) storeGroup(ctx context.Context, t *store.Tx, group []*commitJob) error {
	tx := t.Prepared()
	claim := make(map[string]*commitJob, len(group))
	claims := make([]*commitJob, 0, len(group))
	for _, j := range group {
		if _, ok := claim[j.nonce]; !ok {
			claim[j.nonce] = j
			claims = append(claims, j)
		}
	}
	slices.SortFunc(claims, func(a, b *commitJob) int { return cmp.Compare(a.nonce, b.nonce) })

	// Each token is spent with the report it pays for (migration step 4):
	// one row, one random key.
	args := make([]any, 0, 11*len(claims))
	for _, j := range claims {
		r := j.r
		args = append(args, j.nonce, j.reportHash, j.id, r.Service, r.Host, r.Org, r.Method, r.Vendor, r.Need, r.Hour, r.ClientVersion)
	}
	fresh, err := insertReturning(ctx, tx,
		"INSERT INTO spent_tokens (nonce, report_hash, id, service, host, org, method, vendor, need, hour, client_version) VALUES ",
		"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", " ON CONFLICT (nonce) DO NOTHING RETURNING nonce", len(claims), args)
	if err != nil {
		return fmt.Errorf("reports: spend tokens: %w", err)
	}
	// paidFor is the report each nonce has paid for, once this group commits.
	paidFor := make(map[string]string, len(claims))
	var known []any
	for _, j := range claims {
		if fresh[j.nonce] {
			paidFor[j.nonce] = j.reportHash
		} else {
			known = append(known, j.nonce)
		}
	}
	if len(known) > 0 {
		if err := spentHashes(ctx, tx, known, paidFor); err != nil {
			return err
		}
	}

	var accepted []*commitJob
	for _, j := range group {
		prev, ok := paidFor[j.nonce]
		switch {
		case !ok:
			j.err = fmt.Errorf("reports: spent token vanished")
		case fresh[j.nonce] && claim[j.nonce] == j:
			j.out = Accepted
			accepted = append(accepted, j)
		case prev == j.reportHash:
			j.out = Duplicate
		default:
			j.err = refuse(409, "token: already spent on a different report")
		}
	}
	if g.stored != nil {
		if err := g.stored(); err != nil {
			return err
		}
	}
	counts := map[aggregates.Key]int64{}
	for _, j := range accepted {
		counts[aggregates.Key{Day: j.r.Hour[:10], Org: j.r.Org, Service: j.r.Service, Method: j.r.Method, Vendor: j.r.Vendor, Need: j.r.Need}]++
	}
	return addCounts(ctx, t, counts)
}

// spentHashes adds the report hash each of the nonces was spent on.
func spentHashes(ctx context.Context, tx store.Querier, nonces []any, into map[string]string) error {
	q := "SELECT nonce, report_hash FROM spent_tokens WHERE nonce IN (?" + strings.Repeat(", ?", len(nonces)-1) + ")"
	rows, err := tx.QueryContext(ctx, q, nonces...)
	if err != nil {
		return fmt.Errorf("reports: spent tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, h string
		if err := rows.Scan(&n, &h); err != nil {
			return fmt.Errorf("reports: spent tokens: %w", err)
		}
		into[n] = h
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reports: spent tokens: %w", err)
	}
	return nil
}

// insertReturning runs head + n copies of row + tail (a multi-row INSERT
// ending in RETURNING one text column) and returns the values it returned.
func insertReturning(ctx context.Context, tx store.Querier, head, row, tail string, n int, args []any) (map[string]bool, error) {
	q := head + row + strings.Repeat(", "+row, n-1) + tail
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]bool, n)
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out[v] = true
	}
	return out, rows.Err()
}

// Groups says how many report groups have committed and how many reports
// they held: their ratio is how well intake is amortising its
// transactions (the benchmark prints it).
func (s *Service) Groups() (groups, reports int64) {
	return s.group.groups.Load(), s.group.reports.Load()
}

// queued is how many jobs wait for the next group (for tests).
func (g *groupCommit) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// addCounts adds a group's counters: aggregates.IncrementAll takes the rows
// table by table in key order, so groups of several hubs never deadlock.
func addCounts(ctx context.Context, tx *store.Tx, counts map[aggregates.Key]int64) error {
	return aggregates.IncrementAll(ctx, tx.Prepared(), counts)
}
