package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/catalog"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// fakeHub serves one signed envelope at GET /api/v1/whitelist; the push
// route is absent, so the agent relies on polls and `sync` here (the push
// is tested in helper/whitelist).
type fakeHub struct {
	mu   sync.Mutex
	body []byte
}

func (h *fakeHub) set(t *testing.T, key ed25519.PrivateKey, version int64) {
	d, err := catalog.ExampleDocument(version, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	env, err := wl.Sign(d, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(env)
	h.mu.Lock()
	h.body = b
	h.mu.Unlock()
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/whitelist" {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	w.Write(h.body)
}

func whitelistEnv(t *testing.T) (*Env, chan protocol.Event) {
	t.Helper()
	dir := t.TempDir()
	dirs := paths.Dirs{Config: filepath.Join(dir, "c"), State: filepath.Join(dir, "s"), Runtime: filepath.Join(dir, "r")}
	if err := dirs.Ensure(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Open(dirs.ConfigFile())
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan protocol.Event, 16)
	env := &Env{Dirs: dirs, Config: cfg, Log: slog.New(slog.DiscardHandler),
		Reg: NewRegistry(func(e protocol.Event) { events <- e })}
	return env, events
}

func call(t *testing.T, env *Env, typ, body string, out any) error {
	t.Helper()
	req, err := protocol.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.Reg.Dispatch(context.Background(), req)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(res)
	return json.Unmarshal(b, out)
}

func TestWhitelistSubsystem(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	hub := &fakeHub{}
	hub.set(t, key, 3)
	srv := httptest.NewServer(hub)
	defer srv.Close()

	env, events := whitelistEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := setupWhitelist(ctx, env); err != nil {
		t.Fatal(err)
	}
	if env.Whitelist == nil {
		t.Fatal("env.Whitelist not set")
	}

	// Not enrolled: sync says so, suggest still names the service from the
	// built-in catalog, stale.
	err := call(t, env, "sync", `{"id":1,"type":"sync"}`, nil)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeNotEnrolled {
		t.Fatalf("sync before enrolment: %v, want code %d", err, protocol.CodeNotEnrolled)
	}
	var sr protocol.SuggestResult
	if err := call(t, env, "suggest", `{"id":2,"type":"suggest","host":"us02web.zoom.us"}`, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Service == nil || *sr.Service != "zoom" || !sr.Stale || sr.Status != wl.Unknown {
		t.Fatalf("suggest before any whitelist: %+v", sr)
	}

	// Enrolment (another process) writes the hub, the key and the org.
	other, _ := config.Open(env.Dirs.ConfigFile())
	if err := other.Update(func(c *config.Config) error {
		c.Hub, c.Org = srv.URL, "example-borough"
		c.WhitelistKeys = []wl.PublicKey{wl.Export(key.Public().(ed25519.PublicKey))}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var syn protocol.SyncResult
	if err := call(t, env, "sync", `{"id":3,"type":"sync"}`, &syn); err != nil {
		t.Fatalf("sync after enrolment: %v", err)
	}
	// The loop, kicked by sync, may have fetched version 3 first; either way
	// the agent now holds it.
	if syn.Version == nil || *syn.Version != 3 {
		t.Fatalf("sync result %+v", syn)
	}
	select {
	case e := <-events:
		if e.Type != protocol.EventWhitelistUpdated || e.Data.(protocol.WhitelistUpdated).Version != 3 {
			t.Fatalf("event %+v", e)
		}
		schemaCheck(t, "", e)
	case <-time.After(2 * time.Second):
		t.Fatal("no whitelist-updated event")
	}

	hub.set(t, key, 4)
	if err := call(t, env, "sync", `{"id":4,"type":"sync"}`, &syn); err != nil || !syn.Changed || *syn.Version != 4 {
		t.Fatalf("second sync: %+v %v", syn, err)
	}
	schemaCheck(t, "sync", syn)

	if err := call(t, env, "suggest", `{"id":5,"type":"suggest","host":"zoom.us"}`, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.Org == nil || *sr.Org != "example-borough" || sr.Status != wl.Blocked || sr.Stale ||
		len(sr.Alternatives) == 0 || sr.Alternatives[0].Service != "microsoft-teams" {
		t.Fatalf("suggest with the enrolled org: %+v", sr)
	}
	if err := call(t, env, "suggest", `{"id":6,"type":"suggest","host":"zoom.us","org":"example-university"}`, &sr); err != nil || sr.Status != wl.Approved {
		t.Fatalf("suggest with an explicit org: %+v %v", sr, err)
	}
	if err := call(t, env, "suggest", `{"id":7,"type":"suggest"}`, &sr); !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidParams {
		t.Fatalf("suggest without host: %v", err)
	}

	schemaCheck(t, "suggest", sr)
	st := status(env)
	schemaCheck(t, "status", st)
	if st.Whitelist.Version == nil || *st.Whitelist.Version != 4 || st.Whitelist.Stale || st.Whitelist.FetchedAt == nil ||
		st.Hub.Reachable == nil || !*st.Hub.Reachable {
		t.Fatalf("status whitelist %+v hub %+v", st.Whitelist, st.Hub)
	}

	srv.Close()
	if err := call(t, env, "sync", `{"id":8,"type":"sync"}`, &syn); !errors.As(err, &pe) || pe.Code != protocol.CodeHubUnreachable {
		t.Fatalf("sync with the hub down: %v", err)
	}
	if st := status(env); *st.Whitelist.Version != 4 || st.Hub.Reachable == nil || *st.Hub.Reachable {
		t.Fatalf("after the hub went down: whitelist %+v hub %+v", st.Whitelist, st.Hub)
	}
}

// schemaCheck validates a result of typ, or an event when typ is "", against
// the protocol's schemas.
func schemaCheck(t *testing.T, typ string, v any) {
	t.Helper()
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if typ == "" {
		err = set.ValidateMessage(b)
	} else {
		err = set.ValidateResult(typ, b)
	}
	if err != nil {
		t.Errorf("%s does not match the protocol schema: %v\n%s", typ, err, b)
	}
}
