//go:build linux

package hubcluster

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
	"github.com/gorilla/websocket"
)

type keysBody struct {
	WhitelistKeys []whitelist.PublicKey `json:"whitelist_keys"`
}

func hubKeys(t testing.TB, base string) (string, []ed25519.PublicKey) {
	t.Helper()
	code, body := fetch(t, base+"/api/v1/keys")
	var k keysBody
	if err := json.Unmarshal(body, &k); err != nil || code != 200 || len(k.WhitelistKeys) == 0 {
		t.Fatalf("%s/api/v1/keys: %d %s %v", base, code, body, err)
	}
	var ids []string
	var pubs []ed25519.PublicKey
	for _, pk := range k.WhitelistKeys {
		pub, err := whitelist.ParsePublicKey(pk)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, pk.KeyID)
		pubs = append(pubs, pub)
	}
	return strings.Join(ids, ","), pubs
}

// signedDoc fetches and verifies a hub's whitelist.
func signedDoc(t testing.TB, base string, trusted []ed25519.PublicKey) *whitelist.Document {
	t.Helper()
	code, body := fetch(t, base+"/api/v1/whitelist")
	var env whitelist.Envelope
	if err := json.Unmarshal(body, &env); err != nil || code != 200 {
		t.Fatalf("%s/api/v1/whitelist: %d %v", base, code, err)
	}
	doc, _, err := whitelist.Verify(&env, trusted)
	if err != nil {
		t.Fatalf("%s: whitelist does not verify with the published keys: %v", base, err)
	}
	return doc
}

func blocked(d *whitelist.Document, org, svc string) bool {
	for _, p := range d.Policies {
		if p.Org == org && p.Service == svc && p.Status == whitelist.Blocked {
			return true
		}
	}
	return false
}

// Issue 15's acceptance, from outside: two hubs started at the same moment
// on one PostgreSQL database with one --master-key-file both come up and
// publish the same signing keys; a policy change made with `detour-server
// admin --db … --master-key-file …` is in the signed whitelist of both
// within 2 s; both answer /readyz with 200 and /metrics with detour_
// series. Then SIGTERM: the stopped hub tells its WebSocket client to
// reconnect (1012), stops, and the other carries on.
func TestClusterOfTwoHubsFromOutside(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	mk := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(mk, masterkey.Generate(), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--db", dsn, "--master-key-file", mk, "--log-format", "json"}
	a := launch(t, 0, append([]string{"--data", t.TempDir()}, common...)...)
	b := launch(t, 0, append([]string{"--data", t.TempDir()}, common...)...)
	a.wait(t)
	b.wait(t)

	for _, h := range []*hubProc{a, b} {
		if code, body := fetch(t, h.URL+"/readyz"); code != 200 {
			t.Fatalf("%s/readyz: %d %s", h.URL, code, body)
		}
	}
	idsA, trusted := hubKeys(t, a.URL)
	idsB, _ := hubKeys(t, b.URL)
	if idsA != idsB {
		t.Fatalf("the hubs publish different signing keys: %s and %s", idsA, idsB)
	}

	data := t.TempDir()
	admin(t, "--data", data, "--db", dsn, "--master-key-file", mk, "org", "add", "north", "--name", "North")
	admin(t, "--data", data, "--db", dsn, "--master-key-file", mk, "policy", "set", "north", "zoom", "blocked")
	changed := time.Now()
	for _, h := range []*hubProc{a, b} {
		for {
			if doc := signedDoc(t, h.URL, trusted); blocked(doc, "north", "zoom") {
				t.Logf("%s serves the change %v after the admin command returned", h.URL, time.Since(changed).Round(time.Millisecond))
				break
			}
			if time.Since(changed) > 2*time.Second {
				t.Fatalf("%s does not serve the policy change within 2 s", h.URL)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	for _, h := range []*hubProc{a, b} {
		_, body := fetch(t, h.URL+"/metrics")
		m := string(body)
		for _, want := range []string{"detour_http_requests_total", "detour_whitelist_version", "detour_websocket_clients", "detour_db_errors_total 0", "detour_db_listening 1"} {
			if !strings.Contains(m, want) {
				t.Errorf("%s/metrics lacks %s", h.URL, want)
			}
		}
	}

	// SIGTERM to a: its WebSocket client is told to reconnect elsewhere.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(a.URL, "http")+"/api/v1/whitelist/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	_, _, err = ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart {
		t.Fatalf("on SIGTERM the WebSocket got %v, want close 1012", err)
	}
	select {
	case <-a.exited():
		if a.err != nil {
			t.Fatalf("hub a after SIGTERM: %v", a.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("hub a did not stop within 30 s of SIGTERM")
	}
	if !strings.Contains(a.logs.String(), `"msg":"draining"`) {
		t.Error("no JSON drain line in the log")
	}
	if code, _ := fetch(t, b.URL+"/readyz"); code != 200 {
		t.Fatalf("hub b after a stopped: %d", code)
	}
}
