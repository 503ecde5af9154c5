package reports

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/privacypass"
	"github.com/detour-project/detour/shared/whitelist"
)

// clock is a movable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testDoc() *whitelist.Document {
	return &whitelist.Document{
		Schema: 1, Version: 1,
		Services:      []whitelist.Service{{ID: "zoom", Name: "Zoom", Category: "video", Hosts: []string{"zoom.us"}}},
		Organisations: []whitelist.Organisation{{ID: "org-a"}, {ID: "org-b"}},
	}
}

func openService(t testing.TB, db *store.DB, c *clock) *Service {
	t.Helper()
	ctx := context.Background()
	// The aggregates tables are the hub's; the tests make them as hub.Open does.
	if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, db, Config{Document: testDoc, Now: c.now, IssuerName: "hub.test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mint makes a token for org's current signing key without HTTP.
func mint(t *testing.T, s *Service, org string) []byte {
	t.Helper()
	k, err := s.signingKey(context.Background(), org)
	if err != nil {
		t.Fatal(err)
	}
	c, err := privacypass.NewClient(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	req, p, err := c.Request(rand.Reader, s.Challenge())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := k.issuer.Sign(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Finalize(p, resp)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Marshal()
}

func zoomReport(c *clock) Report {
	return Report{Service: "zoom", Host: "zoom.us", Org: "org-a", Method: "tcp-reset", Need: "meeting",
		Hour: c.now().UTC().Truncate(time.Hour).Format(time.RFC3339), ClientVersion: "1.0.0"}
}

func status(err error) int {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Status
	}
	if err != nil {
		return 500
	}
	return 0
}

// TestKeyRotation: a key is replaced a week before it expires; a token of
// the old key is still good for a week after that, then refused; the old
// key is no longer published once expired.
func TestKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		s := openService(t, db, c)
		ctx := context.Background()
		first, err := s.EnsureIssuerKey(ctx, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		oldTok := mint(t, s, "org-a")
		c.add(180*24*time.Hour - 6*24*time.Hour) // within a week of not_after
		second, err := s.EnsureIssuerKey(ctx, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		if second.KeyID == first.KeyID {
			t.Fatal("no new key a week before expiry")
		}
		if _, _, err := s.Accept(ctx, zoomReport(c), oldTok); err != nil {
			t.Fatalf("old key's token refused during the grace period: %v", err)
		}
		oldTok2 := func() []byte {
			// Mint under the first key by hand: it no longer signs.
			keys, _ := s.orgKeys(ctx, "org-a", true)
			k := keys[len(keys)-1]
			cl, _ := privacypass.NewClient(k.pub)
			req, p, _ := cl.Request(rand.Reader, s.Challenge())
			resp, _ := k.issuer.Sign(req)
			tok, _ := cl.Finalize(p, resp)
			return tok.Marshal()
		}()
		c.add(14 * 24 * time.Hour) // a week past the old key's not_after
		r := zoomReport(c)
		if _, _, err := s.Accept(ctx, r, oldTok2); status(err) != 401 {
			t.Fatalf("expired key's token: %v", err)
		}
		pub, err := s.PublishedKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pub["org-a"]) != 1 || pub["org-a"][0].KeyID != second.KeyID {
			t.Fatalf("published %+v", pub)
		}
	})
}

// TestConcurrentResends: the same report with the same token sent many
// times at once is stored and counted once, on both engines; a different
// report racing for the same token never gets in.
func TestConcurrentResends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := &clock{t: time.Now()}
		s := openService(t, db, c)
		ctx := context.Background()
		tok := mint(t, s, "org-a")
		r := zoomReport(c)
		other := r
		other.Need = "other"
		var accepted, dup, conflict, bad atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep := r
				if i%4 == 3 {
					rep = other
				}
				out, _, err := s.Accept(ctx, rep, tok)
				switch {
				case err == nil && out == Accepted:
					accepted.Add(1)
				case err == nil && out == Duplicate:
					dup.Add(1)
				case status(err) == 409:
					conflict.Add(1)
				default:
					bad.Add(1)
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		if accepted.Load() != 1 || bad.Load() != 0 {
			t.Fatalf("accepted %d, dup %d, conflict %d", accepted.Load(), dup.Load(), conflict.Load())
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM report_counts`).Scan(&n)
		var rows int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&rows)
		if n != 1 || rows != 1 {
			t.Fatalf("counted %d, stored %d", n, rows)
		}
	})
}

// TestNoCatalog: before the catalog exists, reports are refused with 503
// and codes cannot be made.
func TestNoCatalog(t *testing.T) {
	db := storetest.SQLite(t)
	s, err := Open(context.Background(), db, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Accept(context.Background(), Report{}, nil); status(err) != 503 {
		t.Fatalf("got %v", err)
	}
	if _, _, err := s.CreateCode(context.Background(), "org-a"); !errors.Is(err, ErrNoCatalog) {
		t.Fatalf("got %v", err)
	}
}

// TestGroupCommit: many reports at once are committed in groups (fewer
// transactions than reports), each still decided alone: a token spent on
// another report in the same group is refused without taking its
// neighbours down, and every accepted report is stored and counted once.
func TestGroupCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		c := &clock{t: time.Now()}
		s := openService(t, db, c)
		ctx := context.Background()
		const n = 120
		toks := make([][]byte, n)
		for i := range toks {
			toks[i] = mint(t, s, "org-a")
		}
		r := zoomReport(c)
		other := r
		other.Need = "other"
		var accepted, conflict atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n + n/10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tok, rep := toks[i%n], r
				if i >= n { // every tenth token again, on a different report
					tok, rep = toks[(i-n)*10], other
				}
				out, _, err := s.Accept(ctx, rep, tok)
				switch {
				case err == nil && out == Accepted:
					accepted.Add(1)
				case status(err) == 409:
					conflict.Add(1)
				default:
					t.Errorf("report %d: %v %v", i, out, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if accepted.Load() != n || conflict.Load() != n/10 {
			t.Errorf("accepted %d (want %d), refused %d (want %d)", accepted.Load(), n, conflict.Load(), n/10)
		}
		var counted, stored int
		db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM report_counts`).Scan(&counted)
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&stored)
		if counted != n || stored != n {
			t.Errorf("counted %d, stored %d, want %d", counted, stored, n)
		}
		if g, rs := s.group.groups.Load(), s.group.reports.Load(); g >= rs {
			t.Errorf("%d reports in %d transactions: no grouping", rs, g)
		} else {
			t.Logf("%d reports in %d transactions", rs, g)
		}
	})
}

// TestGroupsOfSeveralHubsDoNotDeadlock: two hubs on one PostgreSQL database
// each commit a group of two reports whose counters cross (a, b on one hub;
// b, a on the other) at the same moment, both groups' reports stored before
// either adds its counters. When each report added to its counter as it was
// stored, each group held the row the other wanted next and PostgreSQL
// ended one as deadlocked (found by test/hubcluster's load test: hundreds
// of deadlocks at 1,000 reports/s on 3 hubs). Now the counters are added
// last, each table's rows in key order: both groups commit and count.
func TestGroupsOfSeveralHubsDoNotDeadlock(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	c := &clock{t: time.Now()}
	ctx := context.Background()
	keyA := aggregates.Key{Day: "2026-12-02", Org: "org-a", Service: "zoom", Method: "tcp-reset", Need: "meeting"}
	keyB := keyA
	keyB.Need = "other"
	var hubs []*Service
	for range 2 {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		hubs = append(hubs, openService(t, db, c))
	}
	// Each hub's group is held back behind a first group (one report)
	// until both of its reports are queued; both makes each group add its
	// counters only once both groups have stored their reports.
	var both sync.WaitGroup
	both.Add(2)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	do := func(g *groupCommit, k aggregates.Key) {
		defer wg.Done()
		_, err := g.do(ctx, testJob(t, k))
		errs <- err
	}
	for h, keys := range [][]aggregates.Key{{keyA, keyB}, {keyB, keyA}} {
		g := &hubs[h].group
		hold, held := make(chan struct{}), make(chan struct{})
		var groups atomic.Int32
		g.stored = func() error {
			if groups.Add(1) == 1 {
				close(held)
				<-hold
				return nil
			}
			both.Done()
			both.Wait()
			return nil
		}
		wg.Add(1)
		go do(g, keyA)
		<-held
		for i, k := range keys {
			wg.Add(1)
			go do(g, k)
			for g.queued() < i+1 {
				time.Sleep(time.Millisecond)
			}
		}
		close(hold)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a group failed: %v", err)
		}
	}
	var counted int
	hubs[0].db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM report_counts`).Scan(&counted)
	if counted != 6 {
		t.Errorf("counted %d, want 6", counted)
	}
}

// testJob is a report for k with a fresh random nonce, as Accept would
// queue it once checked and verified.
func testJob(t testing.TB, k aggregates.Key) *commitJob {
	t.Helper()
	r := Report{Service: k.Service, Host: "zoom.us", Org: k.Org, Method: k.Method, Vendor: k.Vendor, Need: k.Need,
		Hour: k.Day + "T10:00:00Z", ClientVersion: "0.1.0"}
	var nonce [32]byte
	rand.Read(nonce[:])
	canon := canonical(r)
	rh := sha256.Sum256(canon)
	id := sha256.Sum256(append(canon, nonce[:]...))
	return &commitJob{r: r, id: hex.EncodeToString(id[:]), nonce: hex.EncodeToString(nonce[:]), reportHash: hex.EncodeToString(rh[:])}
}
