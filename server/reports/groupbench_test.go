package reports

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// BenchmarkStoreGroup measures one group's transaction alone (no HTTP, no
// token verification) at several group sizes, so a group's fixed cost
// (BEGIN, COMMIT, the counter upserts) can be told from each report's.
func BenchmarkStoreGroup(b *testing.B) {
	for _, size := range []int{1, 8, 64} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			db := storetest.SQLite(b)
			s := openService(b, db, &clock{t: time.Now()})
			g := &s.group
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				jobs := make([]*commitJob, size)
				for i := range jobs {
					jobs[i] = testJob(b, testKey)
				}
				b.StartTimer()
				if err := g.write(ctx, func(tx *store.Tx) error { return g.storeGroup(ctx, tx, jobs) }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*size), "µs/report")
		})
	}
}
