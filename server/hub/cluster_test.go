package hub

import (
	"context"
	"testing"

	"github.com/detour-project/detour/server/store/storetest"
)

// Hubs started at the same moment on one empty PostgreSQL database all come
// up (migrations, seeding and first version included) and agree on the
// catalog version.
func TestHubsStartTogetherOnOnePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	const n = 4
	type result struct {
		h   *Hub
		err error
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan result, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		go func() {
			<-start
			h, err := Open(ctx, Config{DataDir: dir, DSN: dsn}, nil)
			res <- result{h, err}
		}()
	}
	close(start)
	var hubs []*Hub
	for i := 0; i < n; i++ {
		r := <-res
		if r.err != nil {
			t.Errorf("hub %d did not come up: %v", i, r.err)
			continue
		}
		hubs = append(hubs, r.h)
	}
	defer func() {
		for _, h := range hubs {
			h.Close()
		}
	}()
	for _, h := range hubs[1:] {
		if a, b := h.Catalog.Document().Version, hubs[0].Catalog.Document().Version; a != b {
			t.Errorf("hubs disagree on the first version: %d and %d", a, b)
		}
	}
}
