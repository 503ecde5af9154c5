//go:build linux

package hubcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/whitelist"
)

// The report side of the load test: tokens minted beforehand the real way
// (an enrolment code, enrolled devices, blinded requests to POST
// /api/v1/tokens), then reports sent at a fixed rate round-robin to the
// hubs, each retried on the next hub with the same body whenever its hub
// fails to answer (as the helper's queue resends it), and the outcome of
// every one checked against the database afterwards.

// kind is what a report is meant to show.
type kind int

const (
	genuine kind = iota // a fresh token: must be accepted exactly once
	replay              // a token already accepted, on another report: must be refused (409)
	forged              // a token whose signature does not match: must be refused (401)
)

// sent is one report's fate.
type sent struct {
	kind     kind
	body     []byte
	status   int    // the final answer (0: none)
	id       string // the report id a 202 or 200 named
	reason   string // a refusal's "error"
	attempts int
	// took is from the first attempt to the final answer.
	took time.Duration
	// retriedAt: when each retry's cause came, since the run's start.
	retriedAt []time.Duration
	// inDoubt: an earlier attempt failed after the request may have reached
	// a hub (reset, EOF, timeout), so that hub may have committed it.
	inDoubt bool
	// retried are the answers that made it try again (connection errors
	// and 5xx/429), as "status reason" or the error's kind.
	retried []string
}

// intake sends the reports and keeps their fates.
type intake struct {
	hubs    []string
	clients []*http.Client

	mu      sync.Mutex
	reports []*sent
	firstAt time.Time
	lastAt  time.Time
	// accepted are indexes of genuine reports answered 202, for replays.
	accepted chan int
}

func newIntake(hubs []string) *intake {
	in := &intake{hubs: hubs, accepted: make(chan int, 1024)}
	for range hubs {
		in.clients = append(in.clients, &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: 64,
				MaxConnsPerHost:     128,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			},
		})
	}
	return in
}

// mintTokens enrols devices with code and mints n tokens across the hubs.
func mintTokens(t testing.TB, hubs []string, code string, n int) []string {
	t.Helper()
	const devices = 8
	toks := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := hubs[d%len(hubs)]
			dev, err := reportstest.Enrol(client, base, code)
			if err != nil {
				errs <- err
				return
			}
			for {
				lo := int(next.Add(reportstest.MaxBatch) - reportstest.MaxBatch)
				if lo >= n {
					return
				}
				batch, err := dev.Tokens(client, base, min(reportstest.MaxBatch, n-lo))
				if err != nil {
					errs <- err
					return
				}
				copy(toks[lo:], batch)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("minting tokens: %v", err)
	}
	return toks
}

// reportShapes are valid reports on the catalog, varied over services,
// hosts, methods and needs as a sector's reports are.
func reportShapes(t testing.TB, doc *whitelist.Document, org string) []map[string]any {
	t.Helper()
	hour := time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339)
	var out []map[string]any
	for i, s := range doc.Services {
		if len(out) == 24 {
			break
		}
		out = append(out, map[string]any{
			"service": s.ID, "host": s.Hosts[0], "org": org,
			"method": method.Blocks[i%len(method.Blocks)], "vendor": "",
			"need": method.Needs[i%len(method.Needs)], "hour": hour, "client_version": "1.2.3",
		})
	}
	if len(out) == 0 {
		t.Fatal("the catalog has no services to report")
	}
	return out
}

func body(report map[string]any, token string) []byte {
	b, _ := json.Marshal(map[string]any{"report": report, "token": token})
	return b
}

// run sends one genuine report a tick (len(tokens) of them, every 1/rate
// s), and beside every 100th a replay and a forged one, until all are
// sent; it returns when every report has its final answer or ctx ends.
func (in *intake) run(ctx context.Context, shapes []map[string]any, tokens []string, rate int) {
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	in.firstAt = start
	for i, tok := range tokens {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		in.launch(ctx, &wg, &sent{kind: genuine, body: body(shapes[i%len(shapes)], tok)}, i)
		switch i % 100 {
		case 50:
			select {
			case j := <-in.accepted:
				// The same token on a different report (another need).
				var orig struct {
					Report map[string]any `json:"report"`
					Token  string         `json:"token"`
				}
				in.mu.Lock()
				json.Unmarshal(in.reports[j].body, &orig)
				in.mu.Unlock()
				other := map[string]any{}
				for k, v := range orig.Report {
					other[k] = v
				}
				other["need"] = method.Needs[(indexOf(method.Needs, orig.Report["need"])+1)%len(method.Needs)]
				in.launch(ctx, &wg, &sent{kind: replay, body: body(other, orig.Token)}, -1)
			default:
			}
		case 99:
			// A real token with a fresh nonce: well formed, right key,
			// signature over other bytes.
			raw, _ := base64.StdEncoding.DecodeString(tok)
			rand.Read(raw[2:34])
			in.launch(ctx, &wg, &sent{kind: forged, body: body(shapes[(i+1)%len(shapes)], base64.StdEncoding.EncodeToString(raw))}, -1)
		}
	}
	wg.Wait()
}

func indexOf(list []string, v any) int {
	for i, s := range list {
		if s == v {
			return i
		}
	}
	return 0
}

// launch sends s in its own goroutine; idx >= 0 is the genuine report's
// index (for replays of it once accepted).
func (in *intake) launch(ctx context.Context, wg *sync.WaitGroup, s *sent, idx int) {
	in.mu.Lock()
	n := len(in.reports)
	in.reports = append(in.reports, s)
	in.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		in.send(ctx, s, n)
		in.mu.Lock()
		in.lastAt = time.Now()
		in.mu.Unlock()
		if s.kind == genuine && s.status == http.StatusAccepted {
			select {
			case in.accepted <- n:
			default:
			}
		}
	}()
}

// send posts s as a helper behind a load balancer would, until a hub
// answers it finally (2xx or a 4xx refusal) or ctx ends. The balancer sends
// it round-robin, and a connection a hub refuses (the killed one) goes at
// once to another hub, as HAProxy's `option redispatch` does. Anything
// else (no answer, a 5xx, a 429) is the helper's queue's business
// (helper/reports): a pause of d/2 to d, d doubling from 250 ms to 4 s
// (the helper's own start at 5 s would outlast the run), then the balancer
// again, the same body with the same token.
func (in *intake) send(ctx context.Context, s *sent, n int) {
	start := time.Now()
	defer func() { s.took = time.Since(start) }()
	k := n % len(in.hubs)
	backoff := 250 * time.Millisecond
	retry := func(why string, redispatch bool) {
		s.retried = append(s.retried, why)
		s.retriedAt = append(s.retriedAt, time.Since(in.firstAt))
		if redispatch {
			k = (k + 1 + mrand.IntN(len(in.hubs)-1)) % len(in.hubs)
			return
		}
		pause(ctx, backoff/2+mrand.N(backoff/2))
		backoff = min(2*backoff, 4*time.Second)
		k = mrand.IntN(len(in.hubs))
	}
	for refused := 0; ctx.Err() == nil; {
		s.attempts++
		req, _ := http.NewRequestWithContext(ctx, "POST", in.hubs[k]+"/api/v1/reports", bytes.NewReader(s.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := in.clients[k].Do(req)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused++
				retry("connection refused", refused < len(in.hubs))
				continue
			}
			s.inDoubt = true
			retry("no answer ("+errKind(err)+")", false)
			continue
		}
		refused = 0
		var ans struct {
			Status string `json:"status"`
			ID     string `json:"id"`
			Error  string `json:"error"`
		}
		raw, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			s.inDoubt = true
			retry("no answer (truncated)", false)
			continue
		}
		if json.Unmarshal(raw, &ans) != nil {
			// Not JSON: a refusal in front of the routes (the report gate's
			// 503), which says why in plain text.
			ans.Error = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			// A 500 may come from a commit whose outcome the hub did not
			// learn: in doubt. A 503 or 429 is a refusal before any work.
			if resp.StatusCode == http.StatusInternalServerError {
				s.inDoubt = true
			}
			retry(fmt.Sprintf("%d %s", resp.StatusCode, ans.Error), false)
			continue
		}
		s.status, s.id, s.reason = resp.StatusCode, ans.ID, ans.Error
		return
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// errKind names a transport error without its addresses.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

// tally is what the reports came to, checked against the database.
type tally struct {
	Genuine, Accepted, DupAfterRetry, InDoubt, Retried int
	Rows, Spent, Counted                               int64
	RefusedBy, RetriedBy                               map[string]int
	PerSec                                             float64
	// Took50 and Took99 are the genuine reports' times to a final answer,
	// retries included; RetriesBySecond counts retries by the second of
	// the run they came in.
	Took50, Took99  time.Duration
	RetriesBySecond map[int]int
}

// check compares every report's fate with the database: the rows of
// org's reports are exactly the ids answered 202 or 200 (a retry whose
// first attempt had committed), every genuine report has one of those
// answers, no replayed or forged token got in, every refusal says why, and
// the spent tokens and counters agree with the rows.
func (in *intake) check(t testing.TB, dsn, org string) tally {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT id FROM reports WHERE org = ?`, org)
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]bool{}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		inDB[id] = true
	}
	rows.Close()
	tl := tally{RefusedBy: map[string]int{}, RetriedBy: map[string]int{}, RetriesBySecond: map[int]int{}, Rows: int64(len(inDB))}
	var took []time.Duration
	db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM spent_tokens`).Scan(&tl.Spent)
	db.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM report_counts WHERE org = ?`, org).Scan(&tl.Counted)

	answered := map[string]int{}
	lost := 0
	for _, s := range in.reports {
		for _, r := range s.retried {
			tl.RetriedBy[r]++
		}
		for _, at := range s.retriedAt {
			tl.RetriesBySecond[int(at.Seconds())]++
		}
		if len(s.retried) > 0 {
			tl.Retried++
		}
		if s.inDoubt {
			tl.InDoubt++
		}
		switch {
		case s.status == 0:
			lost++
			continue
		case s.status >= 400:
			if s.reason == "" {
				t.Errorf("a refusal (%d) without a reason", s.status)
			}
			tl.RefusedBy[fmt.Sprintf("%d %s", s.status, s.reason)]++
		}
		switch s.kind {
		case genuine:
			tl.Genuine++
			took = append(took, s.took)
			switch s.status {
			case http.StatusAccepted:
				tl.Accepted++
			case http.StatusOK:
				tl.DupAfterRetry++
				if !s.inDoubt {
					t.Errorf("report %s answered duplicate though sent once", s.id)
				}
			default:
				t.Errorf("a genuine report was refused: %d %s", s.status, s.reason)
				continue
			}
			answered[s.id]++
			if !inDB[s.id] {
				t.Errorf("report %s was answered %d but is not in the database", s.id, s.status)
			}
		case replay, forged:
			if s.status < 400 {
				t.Errorf("a %s token was taken (%d %s): a token accepted twice", map[kind]string{replay: "replayed", forged: "forged"}[s.kind], s.status, s.id)
			}
		}
	}
	for id, n := range answered {
		if n > 1 {
			t.Errorf("report %s answered as stored %d times", id, n)
		}
	}
	for id := range inDB {
		if answered[id] == 0 {
			t.Errorf("report %s is in the database but no sender heard it taken", id)
		}
	}
	if lost > 0 {
		t.Errorf("%d reports never got a final answer", lost)
	}
	if want := int64(tl.Accepted + tl.DupAfterRetry); tl.Rows != want || tl.Spent != want || tl.Counted != want {
		t.Errorf("rows %d, spent tokens %d, counted %d; want each = accepted %d + duplicates after a retry %d", tl.Rows, tl.Spent, tl.Counted, tl.Accepted, tl.DupAfterRetry)
	}
	tl.PerSec = float64(tl.Genuine) / in.lastAt.Sub(in.firstAt).Seconds()
	slices.Sort(took)
	tl.Took50, tl.Took99 = quantile(took, 0.5), quantile(took, 0.99)
	return tl
}

// sortedCounts renders counts by key, largest first.
func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d × %q; ", m[k], k)
	}
	if b.Len() == 0 {
		return "none"
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// bySecond renders counts by second as "s:n" pairs in time order.
func bySecond(m map[int]int) string {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d:%d ", k, m[k])
	}
	if b.Len() == 0 {
		return "none"
	}
	return strings.TrimSpace(b.String())
}
