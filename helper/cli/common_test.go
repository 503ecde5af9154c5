package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/agent"
	"github.com/detour-project/detour/shared/catalog"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// checkBothApprove is the acceptance: the answer lists every service
// that both organisations approve in the signed whitelist, and none that
// either blocks.
func checkBothApprove(t *testing.T, out string) {
	t.Helper()
	var res protocol.CommonResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	d, err := catalog.ExampleDocument(1, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	status := map[[2]string]string{}
	for _, p := range d.Policies {
		status[[2]string{p.Org, p.Service}] = p.Status
	}
	listed := map[string]string{}
	for _, c := range res.Categories {
		for _, s := range c.Services {
			listed[s.Service] = s.Status
		}
	}
	both := 0
	for _, s := range d.Services {
		b, h := status[[2]string{"example-borough", s.ID}], status[[2]string{"example-health", s.ID}]
		switch {
		case b == wl.Approved && h == wl.Approved:
			both++
			if listed[s.ID] != protocol.CommonConfirmed {
				t.Errorf("%s: both approve, listed as %q", s.ID, listed[s.ID])
			}
		case b == wl.Blocked || h == wl.Blocked:
			if st, ok := listed[s.ID]; ok {
				t.Errorf("%s: blocked by one, listed as %q", s.ID, st)
			}
		default:
			if listed[s.ID] != protocol.CommonUnconfirmed {
				t.Errorf("%s: neither blocks, not both approve, listed as %q", s.ID, listed[s.ID])
			}
		}
	}
	if both == 0 {
		t.Fatal("the examples have no service both approve: the test proves nothing")
	}
}

func TestCommonFromCache(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	// A hub is configured but nothing may reach it: the answer comes from
	// the verified cache alone.
	var hits atomic.Int64
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer hub.Close()
	dirs := suggestHome(t, key, hub.URL, "example-borough")
	writeCache(t, dirs, signedExample(t, key, 5, time.Now()))

	code, out, errs := run(t, runCommon, "example-borough", "example-health", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	checkBothApprove(t, out)

	code, out, errs = run(t, runCommon, "--category", "video", "example-borough", "example-health")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, w := range []string{"What works for Example Borough Council, Example Health Board:", "Video meetings",
		"Microsoft Teams — https://teams.microsoft.com/ (approved by all", "Whereby", "unconfirmed: unknown at Example Borough Council"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	for _, n := range []string{"Zoom", "Google Meet", "Shared documents"} {
		if strings.Contains(out, n) {
			t.Errorf("output has %q:\n%s", n, out)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "usage"},
		{[]string{"example-borough", "example-atlantis"}, 1, "example-atlantis: not an organisation in the whitelist"},
		{[]string{"example-borough", "--category", "email"}, 1, "not a catalog category"},
	} {
		code, _, errs := run(t, runCommon, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("%q: exit %d %q, want %d %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("common sent %d requests to the hub", hits.Load())
	}
}

// TestCommonThroughAgent: the same answer from a running agent, and an
// unknown organisation is the agent's own sentence.
func TestCommonThroughAgent(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	body, _ := json.Marshal(signedExample(t, key, 3, time.Now()))
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/whitelist" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer hub.Close()
	dirs := suggestHome(t, key, hub.URL, "example-health")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Dirs: dirs, NoTray: true, Ready: func() { close(ready) }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("agent not ready")
	}
	if code, out, errs := run(t, runSync, "--json"); code != 0 {
		t.Fatalf("sync: exit %d %s %s", code, out, errs)
	}
	code, out, errs := run(t, runCommon, "example-borough", "example-health", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	checkBothApprove(t, out)
	if !strings.Contains(out, `"version": 3`) && !strings.Contains(out, `"version":3`) {
		t.Errorf("not answered from version 3:\n%s", out)
	}
	code, _, errs = run(t, runCommon, "example-borough", "example-atlantis")
	if code != 1 || !strings.Contains(errs, "example-atlantis") || !strings.Contains(errs, "known: example-borough") {
		t.Errorf("unknown org through the agent: exit %d %q", code, errs)
	}
}
