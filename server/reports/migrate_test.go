package reports

import (
	"context"
	"testing"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestReportsStoredBeforeStep4: a hub's database from before migration
// step 4 (reports in a table of their own) keeps every report readable
// through the reports view after the upgrade, still refuses the tokens
// those reports spent (and answers their resends as duplicates), and
// stores new reports on their token's row.
func TestReportsStoredBeforeStep4(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "aggregates", aggregates.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, "reports", Migrations[:3]); err != nil {
			t.Fatal(err)
		}
		c := &clock{t: time.Now()}
		// The service as it was before step 4, to mint with the same keys.
		old := &Service{db: db, cfg: Config{Document: testDoc, Now: c.now, IssuerName: "hub.test", TokensPerDay: 20, KeyLifetime: 180 * 24 * time.Hour},
			keys: map[string][]*orgKey{}, byID: map[[32]byte]*orgKey{}, reloaded: map[string]time.Time{}}
		r := zoomReport(c)
		tok := mint(t, old, "org-a")
		j, err := old.admit(ctx, r, tok)
		if err != nil {
			t.Fatal(err)
		}
		// What the old intake wrote for it.
		if _, err := db.ExecContext(ctx, `INSERT INTO spent_tokens (nonce, report_hash) VALUES (?, ?)`, j.nonce, j.reportHash); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO reports (id, service, host, org, method, vendor, need, hour, client_version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.id, r.Service, r.Host, r.Org, r.Method, r.Vendor, r.Need, r.Hour, r.ClientVersion); err != nil {
			t.Fatal(err)
		}

		s, err := Open(ctx, db, Config{Document: testDoc, Now: c.now, IssuerName: "hub.test"})
		if err != nil {
			t.Fatal(err)
		}
		if out, id, err := s.Accept(ctx, r, tok); err != nil || out != Duplicate || id != j.id {
			t.Fatalf("resend of a report stored before step 4: %v %q %v, want a duplicate with id %q", out, id, err, j.id)
		}
		other := r
		other.Need = "other"
		if _, _, err := s.Accept(ctx, other, tok); status(err) != 409 {
			t.Fatalf("a token spent before step 4 on another report: %v, want 409", err)
		}
		fresh := mint(t, s, "org-a")
		out, newID, err := s.Accept(ctx, r, fresh)
		if err != nil || out != Accepted {
			t.Fatalf("a new report: %v %v", out, err)
		}
		ids := map[string]bool{}
		rows, err := db.QueryContext(ctx, `SELECT id, service, host, org, method, vendor, need, hour, client_version FROM reports`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var got Report
			if err := rows.Scan(&id, &got.Service, &got.Host, &got.Org, &got.Method, &got.Vendor, &got.Need, &got.Hour, &got.ClientVersion); err != nil {
				t.Fatal(err)
			}
			if got != r {
				t.Errorf("report %s reads back as %+v, want %+v", id, got, r)
			}
			ids[id] = true
		}
		if len(ids) != 2 || !ids[j.id] || !ids[newID] {
			t.Fatalf("the reports view holds %v, want the old %s and the new %s", ids, j.id, newID)
		}
	})
}
