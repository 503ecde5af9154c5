package reports

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/detour-project/detour/server/reports/reportstest"
)

// TestCrashDuringTokenFetchWastesNothing: the hub signs a batch and counts
// it, but its answer never reaches the agent (the connection drops, as when
// the agent is killed mid-fetch). The agent restarted from the same folder
// sends the same batch again, is answered without being counted again, and
// ends with a full stash — where before it would have spent a second batch
// of the day's budget, or waited for the next day.
func TestCrashDuringTokenFetchWastesNothing(t *testing.T) {
	root := t.TempDir()
	h, r := enrolled(t, root)
	var dropped atomic.Int32
	h.Intercept(func(w http.ResponseWriter, req *http.Request, next http.Handler) {
		if req.URL.Path != "/api/v1/tokens" || dropped.Load() > 0 {
			next.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req) // signed and counted
		dropped.Add(1)
		if rec.Code != http.StatusOK {
			t.Errorf("hub refused the first batch: %d %s", rec.Code, rec.Body)
		}
		reportstest.Down(w, req, next)
	})
	if err := r.Refill(context.Background()); err == nil {
		t.Fatal("refill succeeded though the answer was dropped")
	}
	pendingFile := filepath.Join(dirsAt(root).State, "reports", "tokens-pending.json")
	if _, err := os.Stat(pendingFile); err != nil {
		t.Fatalf("no batch on disk after the lost answer: %v", err)
	}
	counted := issued(t, h)
	if counted == 0 {
		t.Fatal("the hub did not count the first batch")
	}

	r2 := newReporter(t, root, nil) // the agent after a restart
	if err := r2.Refill(context.Background()); err != nil {
		t.Fatalf("refill after restart: %v", err)
	}
	if got := issued(t, h); got != counted {
		t.Errorf("the hub counted %d tokens, then %d: the batch was charged twice", counted, got)
	}
	st, _ := r2.store.stash()
	if len(st.Tokens) != counted {
		t.Errorf("stash holds %d tokens, want the %d of the recovered batch", len(st.Tokens), counted)
	}
	if _, err := os.Stat(pendingFile); !os.IsNotExist(err) {
		t.Errorf("the finished batch is still on disk: %v", err)
	}
	// The recovered tokens are good: a report is accepted with one.
	id, _, err := r2.Enqueue(testReport(), true)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if !r2.SendNow(context.Background(), id) || count(t, h) != 1 {
		t.Fatalf("a report with a recovered token was not counted: %+v", r2.Status())
	}
}

// issued is how many tokens the hub has counted against devices' budgets.
func issued(t *testing.T, h *reportstest.Hub) int {
	t.Helper()
	var n int
	if err := h.DB.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM token_issuance`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
