package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
)

// TestAgreementLifecycle walks one agreement on both engines: a proposal
// (stored and audited, no version), endorsements (each approves the service
// in the same version), a decline (reason kept on the hub, never signed),
// withdrawal by blocking, and bad input that changes nothing.
func TestAgreementLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := open(t, db, Options{Seed: fixture(), Examples: examples()})
		c.opts.Examples = nil
		db.ExecContext(ctx, `INSERT INTO organisations (id, name, sector, created_at) VALUES ('east', 'East', '', 0)`)
		v0 := c.Document().Version

		v, err := c.Propose(ctx, "video-c", "north", "Works in every browser <b>no</b> install", "owner@north")
		if err != nil || v != 0 {
			t.Fatalf("propose: %d %v", v, err)
		}
		if c.Document().Version != v0 || c.Document().Agreements != nil {
			t.Fatalf("a proposal alone changed the signed document: %+v", c.Document().Agreements)
		}

		v1, err := c.Endorse(ctx, "north", "video-c", "owner@north")
		if err != nil || v1 != v0+1 {
			t.Fatalf("endorse: %d %v", v1, err)
		}
		d := c.Document()
		if len(d.Agreements) != 1 || !slices.Equal(d.Agreements[0].EndorsedBy, []string{"north"}) || d.Agreements[0].Category != "video" {
			t.Fatalf("agreements %+v", d.Agreements)
		}
		if p := policyOf(d, "north", "video-c"); p == nil || p.Status != whitelist.Approved {
			t.Fatalf("north's policy after endorsing: %+v", p)
		}
		v2, err := c.Endorse(ctx, "south", "video-c", "owner@south")
		if err != nil || v2 != v1+1 || !slices.Equal(c.Document().Agreements[0].EndorsedBy, []string{"north", "south"}) {
			t.Fatalf("second endorsement: %d %v %+v", v2, err, c.Document().Agreements)
		}
		// south already approved video-c with a note; endorsing keeps it.
		secret := "Our board says no: budget <script>x</script>"
		v3, err := c.Decline(ctx, "east", "video-c", secret, "owner@east")
		if err != nil || v3 != 0 {
			t.Fatalf("decline without a prior endorsement: %d %v", v3, err)
		}
		d = c.Document()
		payload, _ := json.Marshal(d)
		for _, leak := range []string{secret, "budget", "declined", "Works in every browser", "owner@"} {
			if strings.Contains(string(payload), leak) {
				t.Errorf("the signed document carries %q", leak)
			}
		}

		// Blocking the service withdraws north's endorsement from the document.
		v4, err := c.SetPolicy(ctx, whitelist.Policy{Org: "north", Service: "video-c", Status: whitelist.Blocked}, "owner@north")
		if err != nil || !slices.Equal(c.Document().Agreements[0].EndorsedBy, []string{"south"}) {
			t.Fatalf("after north blocks: %d %v %+v", v4, err, c.Document().Agreements)
		}
		// A decline after an endorsement withdraws it: a new version.
		v5, err := c.Decline(ctx, "south", "video-c", "changed our mind", "owner@south")
		if err != nil || v5 != v4+1 || c.Document().Agreements != nil {
			t.Fatalf("south declines after endorsing: %d %v %+v", v5, err, c.Document().Agreements)
		}

		list, err := c.Agreements(ctx)
		if err != nil || len(list) != 1 {
			t.Fatal(list, err)
		}
		a := list[0]
		if a.ProposedBy != "north" || a.Note == "" || len(a.Answers) != 3 || len(a.EndorsedBy) != 0 {
			t.Fatalf("list: %+v", a)
		}
		if a.Answers[0].Org != "east" || a.Answers[0].Reason != secret || a.Answers[0].Decision != Declined || a.Answers[0].Actor != "owner@east" {
			t.Errorf("east's answer: %+v", a.Answers[0])
		}

		before := c.Document().Version
		for _, tc := range []struct {
			name string
			f    func() error
		}{
			{"propose again", func() error { _, err := c.Propose(ctx, "video-c", "north", "", "x"); return err }},
			{"unknown service", func() error { _, err := c.Propose(ctx, "nope", "north", "", "x"); return err }},
			{"unknown proposer", func() error { _, err := c.Propose(ctx, "video-a", "nowhere", "", "x"); return err }},
			{"control characters", func() error { _, err := c.Propose(ctx, "video-a", "north", "a\x00b", "x"); return err }},
			{"endorse without proposal", func() error { _, err := c.Endorse(ctx, "north", "docs-a", "x"); return err }},
			{"unknown endorser", func() error { _, err := c.Endorse(ctx, "nowhere", "video-c", "x"); return err }},
			{"decline without reason", func() error { _, err := c.Decline(ctx, "north", "video-c", "  ", "x"); return err }},
		} {
			if err := tc.f(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
			}
		}
		if after, _ := c.Agreements(ctx); len(after) != 1 || c.Document().Version != before {
			t.Errorf("bad input changed something: %d agreements, version %d→%d", len(after), before, c.Document().Version)
		}

		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM catalog_audit WHERE action LIKE 'agreement %'`).Scan(&n)
		if n != 5 {
			t.Errorf("%d agreement audit rows, want 5 (propose, 2 endorse, 2 decline)", n)
		}
		// A version counter with no gaps: the unsigned changes took none.
		var versions []int64
		rows, _ := db.QueryContext(ctx, `SELECT version FROM whitelist_versions ORDER BY version`)
		for rows.Next() {
			var x int64
			rows.Scan(&x)
			versions = append(versions, x)
		}
		rows.Close()
		for i := 1; i < len(versions); i++ {
			if versions[i] != versions[i-1]+1 {
				t.Errorf("versions have a gap: %v", versions)
			}
		}
	})
}

func policyOf(d *whitelist.Document, org, svc string) *whitelist.Policy {
	for i := range d.Policies {
		if d.Policies[i].Org == org && d.Policies[i].Service == svc {
			return &d.Policies[i]
		}
	}
	return nil
}
