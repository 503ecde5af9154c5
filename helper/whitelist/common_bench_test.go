package whitelist

import (
	"fmt"
	"testing"
	"time"

	"github.com/detour-project/detour/shared/catalog"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// BenchmarkCommon measures the common answer (every category, the named
// organisations) against Suggest on the same index as the baseline, on the
// example document and on a sector-sized one (200 organisations, a policy
// for every service at each). It prints the ratio to Suggest.
func BenchmarkCommon(b *testing.B) {
	small, err := catalog.ExampleDocument(1, time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	big := *small
	big.Organisations, big.Policies = nil, nil
	statuses := []string{wl.Approved, wl.Blocked, wl.Restricted, wl.Unknown}
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("org-%03d", i)
		big.Organisations = append(big.Organisations, wl.Organisation{ID: id, Name: id})
		for j, s := range big.Services {
			big.Policies = append(big.Policies, wl.Policy{Org: id, Service: s.ID, Status: statuses[(i+j)%len(statuses)]})
		}
	}
	for _, tc := range []struct {
		name string
		doc  *wl.Document
		orgs []string
	}{
		{"examples-2orgs", small, []string{"example-borough", "example-health"}},
		{"sector-200orgs-5named", &big, []string{"org-000", "org-001", "org-002", "org-003", "org-004"}},
	} {
		ix := NewIndex(tc.doc)
		var base float64
		b.Run(tc.name+"/suggest-baseline", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ix.Suggest("zoom.us", tc.orgs[0], false)
			}
			base = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		b.Run(tc.name+"/common", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ix.Common(tc.orgs, "", false); err != nil {
					b.Fatal(err)
				}
			}
			per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if base > 0 {
				b.ReportMetric(per/base, "x-suggest")
			}
		})
	}
}
