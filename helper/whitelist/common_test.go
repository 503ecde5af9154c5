package whitelist

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/detour-project/detour/shared/catalog"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

func exampleIndex(t *testing.T) *Index {
	t.Helper()
	d, err := catalog.ExampleDocument(7, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return NewIndex(d)
}

// TestCommonAgainstTheDocument checks the answer against the policies
// themselves: every service all named organisations approve is confirmed,
// none that any of them blocks appears, and the rest are unconfirmed.
func TestCommonAgainstTheDocument(t *testing.T) {
	ix := exampleIndex(t)
	for _, orgs := range [][]string{
		{"example-borough", "example-health"},
		{"example-health", "example-borough", "example-university"},
		{"example-police"},
		{"example-borough", "example-health", "example-university", "example-fire", "example-police", "example-department"},
	} {
		res, err := ix.Common(orgs, "", false)
		if err != nil {
			t.Fatalf("%v: %v", orgs, err)
		}
		if len(res.Categories) != len(CommonOrder) {
			t.Fatalf("%v: %d categories", orgs, len(res.Categories))
		}
		listed := map[string]protocol.CommonService{}
		for i, c := range res.Categories {
			if c.Category != CommonOrder[i] {
				t.Errorf("category %d is %s, want %s", i, c.Category, CommonOrder[i])
			}
			confirmedDone := false
			for _, s := range c.Services {
				if ix.Service(s.Service).Category != c.Category {
					t.Errorf("%s listed under %s", s.Service, c.Category)
				}
				if s.Status == protocol.CommonUnconfirmed {
					confirmedDone = true
				} else if confirmedDone {
					t.Errorf("%v %s: confirmed %s after an unconfirmed one", orgs, c.Category, s.Service)
				}
				listed[s.Service] = s
			}
		}
		for _, svc := range ix.Document().Services {
			all, any := true, false
			for _, o := range orgs {
				p := ix.Policy(o, svc.ID)
				all = all && p != nil && p.Status == wl.Approved
				any = any || (p != nil && p.Status == wl.Blocked)
			}
			s, ok := listed[svc.ID]
			switch {
			case any && ok:
				t.Errorf("%v: %s is blocked by one of them but listed", orgs, svc.ID)
			case all && (!ok || s.Status != protocol.CommonConfirmed):
				t.Errorf("%v: %s approved by all but %+v", orgs, svc.ID, s)
			case !any && !all && (!ok || s.Status != protocol.CommonUnconfirmed):
				t.Errorf("%v: %s blocked by none, not approved by all, but %+v", orgs, svc.ID, s)
			}
			if ok {
				if s.Approvals != ix.Approvals(svc.ID) || len(s.Policies) != len(orgs) {
					t.Errorf("%s: %+v", svc.ID, s)
				}
				for i, p := range s.Policies {
					if p.Org != orgs[i] {
						t.Errorf("%s: policies not in the order asked: %+v", svc.ID, s.Policies)
					}
				}
			}
		}
		for i, o := range res.Orgs {
			if o.ID != orgs[i] || o.Name == "" {
				t.Errorf("orgs %+v", res.Orgs)
			}
		}
	}
}

func TestCommonRanksAndFilters(t *testing.T) {
	ix := exampleIndex(t)
	res, err := ix.Common([]string{"example-borough", "example-health"}, "video", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Categories) != 1 || res.Categories[0].Category != "video" || !res.Stale || res.Version == nil || *res.Version != 7 {
		t.Fatalf("%+v", res)
	}
	var ids []string
	for _, s := range res.Categories[0].Services {
		ids = append(ids, s.Service)
	}
	// Teams is the one both approve; Webex (approved at health, unknown at
	// the borough) and Whereby come next; Zoom (blocked at the borough) and
	// Google Meet (blocked at both) never.
	if len(ids) == 0 || ids[0] != "microsoft-teams" || slices.Contains(ids, "zoom") || slices.Contains(ids, "google-meet") {
		t.Fatalf("video: %v", ids)
	}
	for i := 1; i < len(res.Categories[0].Services); i++ {
		a, b := res.Categories[0].Services[i-1], res.Categories[0].Services[i]
		if a.Status == b.Status && approvedHere(a) < approvedHere(b) {
			t.Errorf("%s (%d here) ranked above %s (%d here)", a.Service, approvedHere(a), b.Service, approvedHere(b))
		}
		if a.Status == b.Status && approvedHere(a) == approvedHere(b) && a.Approvals < b.Approvals {
			t.Errorf("%s (%d approvals) ranked above %s (%d)", a.Service, a.Approvals, b.Service, b.Approvals)
		}
	}

	for _, tc := range []struct {
		orgs []string
		cat  string
		want error
	}{
		{[]string{"example-borough", "example-nowhere"}, "", ErrUnknownOrg},
		{[]string{"example-borough"}, "email", ErrUnknownCategory},
	} {
		if _, err := ix.Common(tc.orgs, tc.cat, false); !errors.Is(err, tc.want) {
			t.Errorf("%v %q: %v, want %v", tc.orgs, tc.cat, err, tc.want)
		}
	}
	if r, err := ix.Common(nil, "", false); err != nil || len(r.Categories) != 0 || len(r.Organisations) != 6 ||
		r.Organisations[0].Name != "Example Borough Council" {
		t.Errorf("no organisations: only the list, by name: %+v %v", r, err)
	}
	if _, err := ix.Common([]string{"example-borough", "example-borough"}, "", false); err == nil {
		t.Error("an organisation twice: no error")
	}
	// The built-in catalog knows no organisation: a clear error, not an
	// empty answer that reads as "nothing works".
	if _, err := SeedIndex().Common([]string{"example-borough"}, "", true); !errors.Is(err, ErrUnknownOrg) {
		t.Errorf("seed: %v", err)
	}
}

func approvedHere(s protocol.CommonService) int {
	n := 0
	for _, p := range s.Policies {
		if p.Status == wl.Approved {
			n++
		}
	}
	return n
}

// TestAgreementsRankFirst: an agreed service the organisation endorses comes
// first in suggestions, saying how many organisations agreed it, and counts
// in the common answer; one it does not endorse keeps its usual place.
func TestAgreementsRankFirst(t *testing.T) {
	d, err := catalog.ExampleDocument(8, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.Policies {
		if d.Policies[i].Service == "whereby" {
			d.Policies[i].Status = wl.Approved
		}
	}
	d.Policies = append(d.Policies, wl.Policy{Org: "example-borough", Service: "whereby", Status: wl.Approved})
	d.Agreements = []wl.Agreement{{Service: "whereby", Category: "video", EndorsedBy: []string{"example-borough", "example-health"}, Since: time.Now().UTC()}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(d)
	res := ix.Suggest("zoom.us", "example-borough", false)
	if len(res.Alternatives) == 0 || res.Alternatives[0].Service != "whereby" {
		t.Fatalf("borough endorses whereby: alternatives %+v", res.Alternatives)
	}
	found := false
	for _, r := range res.Alternatives[0].Reasons {
		if r.Code == ReasonAgreedByN && r.Text == "Agreed by 2 organisations for working across organisations." {
			found = true
		}
	}
	if !found {
		t.Errorf("no agreed-by-n reason: %+v", res.Alternatives[0].Reasons)
	}
	// example-university does not endorse it: the most approved service it
	// approves (Teams) stays first.
	if res := ix.Suggest("zoom.us", "example-university", false); len(res.Alternatives) == 0 || res.Alternatives[0].Service == "whereby" {
		t.Errorf("an organisation that does not endorse it sees it first: %+v", res.Alternatives)
	}
	c, err := ix.Common([]string{"example-borough", "example-health"}, "video", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Categories[0].Services {
		if s.Service == "whereby" && (s.AgreedBy != 2 || s.Status != protocol.CommonConfirmed) {
			t.Errorf("common: %+v", s)
		}
	}
}
