package reports

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

var testKey = aggregates.Key{Day: time.Now().UTC().Format("2006-01-02"), Org: "org-a", Service: "zoom", Method: "tcp-reset", Need: "meeting"}

// result is one job's answer.
type result struct {
	out Outcome
	err error
}

// inOneGroup commits jobs in one group, queued in order while the test
// holds the lead, and returns each job's answer.
func inOneGroup(t *testing.T, g *groupCommit, jobs []*commitJob) []result {
	t.Helper()
	g.mu.Lock()
	g.running = true // as if a group were committing: the jobs queue behind it
	g.mu.Unlock()
	var wg sync.WaitGroup
	out := make([]result, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := g.do(context.Background(), j)
			out[i] = result{o, err}
		}()
		for g.queued() < i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	if g.commitNext() {
		g.drain()
	}
	wg.Wait()
	return out
}

// again is j as a fresh job: the same report, token and id.
func again(j *commitJob) *commitJob {
	return &commitJob{r: j.r, id: j.id, nonce: j.nonce, reportHash: j.reportHash}
}

// otherReport is j's token on a different report.
func otherReport(t *testing.T, j *commitJob) *commitJob {
	k := testKey
	k.Need = "other"
	o := testJob(t, k)
	o.nonce = j.nonce
	return o
}

func stored(t *testing.T, db *store.DB) (counted, reports, spent int) {
	t.Helper()
	ctx := context.Background()
	db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM report_counts`).Scan(&counted)
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&reports)
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM spent_tokens`).Scan(&spent)
	return
}

// TestOneGroupDecidesEachReport: one group holding fresh reports, resends,
// and tokens spent on another report (in an earlier group or earlier in
// the same one) answers each alone: the fresh ones accepted and counted
// once, the resends duplicates, the reused tokens refused with 409.
func TestOneGroupDecidesEachReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := openService(t, db, &clock{t: time.Now()})
		g := &s.group
		earlier := testJob(t, testKey)
		if out, err := g.do(context.Background(), earlier); err != nil || out != Accepted {
			t.Fatalf("an earlier report: %v %v", out, err)
		}
		fresh, fresh2 := testJob(t, testKey), testJob(t, testKey)
		cases := []struct {
			name string
			job  *commitJob
			want Outcome
			code int
		}{
			{"fresh", fresh, Accepted, 0},
			{"fresh resent in the same group", again(fresh), Duplicate, 0},
			{"fresh's token on another report", otherReport(t, fresh), 0, 409},
			{"an earlier report resent", again(earlier), Duplicate, 0},
			{"an earlier token on another report", otherReport(t, earlier), 0, 409},
			{"another fresh", fresh2, Accepted, 0},
		}
		jobs := make([]*commitJob, len(cases))
		for i, c := range cases {
			jobs[i] = c.job
		}
		got := inOneGroup(t, g, jobs)
		for i, c := range cases {
			if got[i].out != c.want || status(got[i].err) != c.code {
				t.Errorf("%s: got %v %v, want %v %d", c.name, got[i].out, got[i].err, c.want, c.code)
			}
		}
		// earlier, fresh and fresh2.
		if c, r, sp := stored(t, db); c != 3 || r != 3 || sp != 3 {
			t.Errorf("counted %d, stored %d reports and %d tokens; want 3 each", c, r, sp)
		}
	})
}

// TestFailedGroupAnswersNoOne: a group whose transaction fails part-way
// (after its reports are stored, before its counters) answers every report
// of it with the error, keeps nothing of it, and takes the same reports
// again when their clients resend: nothing a client was told is accepted
// is lost, and nothing is counted twice.
func TestFailedGroupAnswersNoOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := openService(t, db, &clock{t: time.Now()})
		g := &s.group
		jobs := []*commitJob{testJob(t, testKey), testJob(t, testKey), testJob(t, testKey)}
		boom := errors.New("the database went away")
		g.stored = func() error { return boom }
		for i, r := range inOneGroup(t, g, jobs) {
			if !errors.Is(r.err, boom) || r.out != 0 {
				t.Errorf("report %d of the failed group: %v %v, want %v", i, r.out, r.err, boom)
			}
		}
		if c, r, sp := stored(t, db); c != 0 || r != 0 || sp != 0 {
			t.Fatalf("after a failed group: counted %d, stored %d reports and %d tokens; want none", c, r, sp)
		}
		g.stored = nil
		for i, j := range jobs {
			if out, err := g.do(context.Background(), again(j)); err != nil || out != Accepted {
				t.Errorf("report %d resent: %v %v", i, out, err)
			}
		}
		if c, r, sp := stored(t, db); c != 3 || r != 3 || sp != 3 {
			t.Errorf("after the resends: counted %d, stored %d reports and %d tokens; want 3 each", c, r, sp)
		}
	})
}
