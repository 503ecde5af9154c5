package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// TestCommonSendsNothing: the common request is answered from the copy the
// agent holds. A hub is configured and reachable (sync reaches it: the
// positive control), yet a hundred common requests add no request to it.
// The background loops are not started (their context is already done), so
// any request the hub sees after sync could only come from common.
func TestCommonSendsNothing(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	hub := &fakeHub{}
	hub.set(t, key, 5)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		hub.ServeHTTP(w, r)
	}))
	defer srv.Close()

	env, _ := whitelistEnv(t)
	if err := env.Config.Update(func(c *config.Config) error {
		c.Hub, c.Org = srv.URL, "example-borough"
		c.WhitelistKeys = []wl.PublicKey{wl.Export(key.Public().(ed25519.PublicKey))}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := setupWhitelist(ctx, env); err != nil {
		t.Fatal(err)
	}

	var pe *protocol.Error
	// Before any copy: an unknown organisation, said clearly.
	if err := call(t, env, "common", `{"id":1,"type":"common","orgs":["example-borough","example-health"]}`, &protocol.CommonResult{}); !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidParams {
		t.Fatalf("common before any whitelist: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the hub saw %d requests before sync", hits.Load())
	}
	if err := call(t, env, "sync", `{"id":2,"type":"sync"}`, &protocol.SyncResult{}); err != nil {
		t.Fatal(err)
	}
	after := hits.Load()
	if after == 0 {
		t.Fatal("sync did not reach the hub: the control failed")
	}
	var res protocol.CommonResult
	for i := 0; i < 100; i++ {
		if err := call(t, env, "common", `{"id":3,"type":"common","orgs":["example-borough","example-health"]}`, &res); err != nil {
			t.Fatal(err)
		}
	}
	if got := hits.Load(); got != after {
		t.Fatalf("common sent %d requests to the hub", got-after)
	}
	if res.Version == nil || *res.Version != 5 || len(res.Categories) != 8 || res.Categories[0].Services[0].Service != "microsoft-teams" {
		t.Fatalf("common result %+v", res)
	}
	schemaCheck(t, "common", res)

	for _, body := range []string{
		`{"id":4,"type":"common","orgs":["example-borough","example-atlantis"]}`,
		`{"id":5,"type":"common","orgs":["example-borough"],"category":"email"}`,
	} {
		if err := call(t, env, "common", body, &res); !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidParams {
			t.Errorf("%s: %v, want code %d", body, err, protocol.CodeInvalidParams)
		}
	}
}
