package reports

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/privacypass"
)

// A device that lost the answer to a token batch sends the same blinded
// requests again: the hub answers with the same signatures and counts the
// batch once, so the device's budget is not spent twice; a new batch is
// still counted and still bounded.
func TestRepeatedBatchIsAnsweredOnceCounted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
		s := openService(t, db, c)
		s.cfg.TokensPerDay = 4
		code, _, err := s.CreateCode(ctx, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		enr, err := s.Enrol(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		k, err := s.signingKey(ctx, "org-a")
		if err != nil {
			t.Fatal(err)
		}
		cl, _ := privacypass.NewClient(k.pub)
		batch := func(n int) []string {
			out := make([]string, n)
			for i := range out {
				q, _, err := cl.Request(rand.Reader, s.Challenge())
				if err != nil {
					t.Fatal(err)
				}
				out[i] = base64.StdEncoding.EncodeToString(q)
			}
			return out
		}
		first := batch(4)
		a, _, err := s.SignRequests(ctx, enr.DeviceCredential, first)
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := s.SignRequests(ctx, enr.DeviceCredential, first)
		if err != nil {
			t.Fatalf("the same batch again: %v", err)
		}
		if !slices.Equal(a, again) {
			t.Error("the same batch was answered differently")
		}
		var n int
		db.QueryRowContext(ctx, `SELECT n FROM token_issuance`).Scan(&n)
		if n != 4 {
			t.Errorf("counted %d, want 4 (one batch)", n)
		}
		if _, _, err := s.SignRequests(ctx, enr.DeviceCredential, batch(1)); status(err) != 429 {
			t.Errorf("a new batch over the budget: %v, want 429", err)
		}
		// Tomorrow the same batch is a new day's batch and counts again.
		c.add(24 * time.Hour)
		if _, _, err := s.SignRequests(ctx, enr.DeviceCredential, first); err != nil {
			t.Errorf("the batch on a new day: %v", err)
		}
	})
}
