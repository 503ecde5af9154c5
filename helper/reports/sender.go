package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

func jsonInto(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }

// Run sends due reports and keeps the stash topped up until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	var refillAt time.Time
	for {
		next := r.sendDue(ctx)
		if ctx.Err() != nil {
			return
		}
		// Top the stash up at a random moment once it runs low, never right
		// when a report is made or sent.
		if refillAt.IsZero() && r.Enrolled() && !r.Revoked() && r.stashLen() <= r.opts.StashSize/2 {
			refillAt = r.opts.Now().Add(randBetween(0, r.opts.RefillDelay))
		}
		if !refillAt.IsZero() && !r.opts.Now().Before(refillAt) {
			if err := r.Refill(ctx); err != nil {
				r.setErr("fetching tokens: " + err.Error())
				refillAt = r.opts.Now().Add(randBetween(r.opts.Backoff, r.opts.MaxBackoff))
			} else {
				refillAt = time.Time{}
			}
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = next.Sub(r.opts.Now())
		}
		if !refillAt.IsZero() {
			wait = min(wait, refillAt.Sub(r.opts.Now()))
		}
		wait = max(wait, 10*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

func (r *Reporter) stashLen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, _ := r.store.stash()
	return len(st.Tokens)
}

func (r *Reporter) setErr(s string) {
	r.mu.Lock()
	r.lastErr = s
	r.mu.Unlock()
	r.opts.Log.Warn("reports", "err", s)
}

// sendDue sends every due report and returns when the next one is due (zero
// when the queue is empty).
func (r *Reporter) sendDue(ctx context.Context) time.Time {
	r.mu.Lock()
	items, err := r.store.items()
	r.mu.Unlock()
	if err != nil {
		r.setErr(err.Error())
		return r.opts.Now().Add(r.opts.Backoff)
	}
	var next time.Time
	for _, it := range items {
		if ctx.Err() != nil {
			return next
		}
		if it.NotBefore.After(r.opts.Now()) {
			if next.IsZero() || it.NotBefore.Before(next) {
				next = it.NotBefore
			}
			continue
		}
		if done, retry := r.send(ctx, it.ID); !done && (next.IsZero() || retry.Before(next)) {
			next = retry
		}
	}
	return next
}

// SendNow sends one queued report at once and says whether the hub took it.
func (r *Reporter) SendNow(ctx context.Context, id string) bool {
	done, _ := r.send(ctx, id)
	return done
}

// send makes one attempt at the report id. It returns done when the report
// left the queue (accepted, a known resend, or refused for good), else when
// to try again.
func (r *Reporter) send(ctx context.Context, id string) (done bool, retry time.Time) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	r.mu.Lock()
	var it *Item
	items, _ := r.store.items()
	for _, x := range items {
		if x.ID == id {
			it = x
		}
	}
	r.mu.Unlock()
	if it == nil {
		return true, time.Time{} // already sent by another path
	}
	api, _, err := r.api()
	if err != nil {
		r.setErr(err.Error())
		return false, r.opts.Now().Add(r.opts.MaxBackoff)
	}
	if it.Token == "" {
		fetched, err := r.bindToken(ctx, it)
		if err != nil {
			return false, r.backoff(it, "fetching a token: "+err.Error())
		}
		if fetched && !it.Urgent {
			// Tokens were fetched just now: sending at once would line the
			// fetch up with the report. Wait another random delay.
			it.NotBefore = r.opts.Now().Add(r.delay())
			r.mu.Lock()
			err := r.store.putItem(it)
			r.mu.Unlock()
			if err == nil {
				return false, it.NotBefore
			}
		}
	}
	res, err := api.sendReport(ctx, it.Report, it.Token)
	var he *HubError
	switch {
	case err == nil:
		r.mu.Lock()
		rmErr := r.store.removeItem(it.ID)
		if rmErr == nil {
			r.sent++
			r.lastErr = ""
		}
		r.mu.Unlock()
		r.opts.Log.Info("report sent", "status", res.Status)
		r.changed()
		return rmErr == nil, r.opts.Now().Add(r.opts.Backoff)
	case errors.As(err, &he) && he.Status == 409:
		// The token paid for another report (it was handed out twice after
		// a crash): this report was never stored. Bind a fresh token.
		it.Token = ""
		return false, r.retryToken(it, "token already spent")
	case errors.As(err, &he) && he.Status == 401:
		// The key rotated or the hub was renamed: a fresh token may do.
		it.Token = ""
		return false, r.retryToken(it, he.Reason)
	case errors.As(err, &he) && he.Status >= 400 && he.Status < 500 && he.Status != 408 && he.Status != 429:
		ferr := r.fail(it, "the hub refused a report: ", fmt.Sprintf("%s (HTTP %d)", he.Reason, he.Status))
		return ferr == nil, r.opts.Now().Add(r.opts.Backoff)
	default:
		return false, r.backoff(it, err.Error())
	}
}

// fail gives up on a report: it moves to failed/ (kept for the person, who
// can see why), the status says so, and the agent's log records the reason,
// which is otherwise only in the file.
func (r *Reporter) fail(it *Item, summary, reason string) error {
	it.LastError = reason
	r.mu.Lock()
	err := r.store.failItem(it)
	r.lastErr = summary + reason
	r.mu.Unlock()
	r.opts.Log.Warn("reports: gave up on a report", "service", it.Report.Service, "reason", reason, "kept", err == nil)
	if err != nil {
		r.opts.Log.Error("reports: could not keep the refused report", "err", err)
	}
	r.changed()
	return err
}

// retryToken gives a report a few fresh tokens before calling it failed.
func (r *Reporter) retryToken(it *Item, reason string) time.Time {
	it.TokenFailures++
	if it.TokenFailures > 3 {
		r.fail(it, "a report was refused: ", reason)
		return r.opts.Now()
	}
	return r.backoff(it, reason)
}

// backoff records a failed attempt and schedules the next: exponential with
// full jitter, capped.
func (r *Reporter) backoff(it *Item, reason string) time.Time {
	it.Attempts++
	d := r.opts.Backoff
	for i := 1; i < it.Attempts && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.opts.MaxBackoff)
	it.NotBefore = r.opts.Now().Add(randBetween(d/2, d))
	it.LastError = reason
	r.mu.Lock()
	if err := r.store.putItem(it); err != nil {
		r.opts.Log.Warn("reports: update queued report", "err", err)
	}
	r.lastErr = reason
	r.mu.Unlock()
	return it.NotBefore
}

// bindToken gives it a token from the stash (fetching a batch if the stash
// is empty, and then saying so) and persists the binding before anything is
// sent.
func (r *Reporter) bindToken(ctx context.Context, it *Item) (fetched bool, err error) {
	r.mu.Lock()
	st, _ := r.store.stash()
	r.mu.Unlock()
	if len(st.Tokens) == 0 || st.Org != it.Report.Org {
		if err := r.Refill(ctx); err != nil {
			return false, err
		}
		fetched = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, _ = r.store.stash()
	if len(st.Tokens) == 0 {
		return fetched, errors.New("no token available")
	}
	it.Token = st.Tokens[0]
	if err := r.store.putItem(it); err != nil {
		it.Token = ""
		return fetched, err
	}
	st.Tokens = st.Tokens[1:]
	return fetched, r.store.putStash(st)
}
