package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/shared/whitelist"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := Main(args, &out, &errb); code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// TestDashboardEndToEnd: a hub with example organisations; an account made
// by `admin user add`; counts as reports would leave them; the admin
// command and the API give the same k-anonymous figures; a decision in the
// review queue reaches a helper connected to the WebSocket as a new signed
// whitelist version.
func TestDashboardEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := t.TempDir()
	h, err := hub.Open(ctx, hub.Config{DataDir: data, K: 5, Examples: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	doc := h.Catalog.Document()
	if len(doc.Organisations) == 0 || len(doc.Services) < 2 {
		t.Fatalf("examples: %d orgs, %d services", len(doc.Organisations), len(doc.Services))
	}
	org, svc := doc.Organisations[0].ID, doc.Services[0].ID
	today := time.Now().UTC().Format(time.DateOnly)
	for _, c := range []struct {
		svc string
		n   int64
	}{{svc, 30}, {doc.Services[1].ID, 2}} {
		k := aggregates.Key{Day: today, Org: org, Service: c.svc, Method: "dns-nxdomain", Need: "meeting"}
		if err := aggregates.Increment(ctx, h.DB, k, c.n); err != nil {
			t.Fatal(err)
		}
	}

	var user struct{ Password string }
	if err := json.Unmarshal([]byte(run(t, "admin", "--data", data, "user", "add", "lead@example.org", "--role", "org-admin", "--org", org, "--json")), &user); err != nil || len(user.Password) < 20 {
		t.Fatalf("user add: %v %q", err, user.Password)
	}
	var tok struct{ Token string }
	json.Unmarshal([]byte(run(t, "admin", "--data", data, "api-token", "create", "lead@example.org", "--json")), &tok)

	// The CLI and the API agree, and both hide the 2.
	cliJSON := run(t, "admin", "--data", data, "aggregates", "--org", org, "--json")
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/aggregates?org="+org, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	apiJSON, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var a, b map[string]any
	json.Unmarshal([]byte(cliJSON), &a)
	json.Unmarshal(apiJSON, &b)
	delete(a, "generated_at")
	delete(b, "generated_at")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if res.StatusCode != 200 || string(ja) != string(jb) {
		t.Fatalf("cli and api differ:\ncli %s\napi %d %s", ja, res.StatusCode, jb)
	}
	if !strings.Contains(cliJSON, `"display": "fewer than 5"`) || strings.Contains(cliJSON, `"value": 2`) {
		t.Fatalf("small count not suppressed: %s", cliJSON)
	}
	text := run(t, "admin", "--data", data, "aggregates")
	if !strings.Contains(text, "fewer than 5") || !strings.Contains(text, "Blocks this week") {
		t.Fatalf("aggregates text: %s", text)
	}

	// A helper listening for new versions.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/whitelist/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	version := func() (*whitelist.Document, error) {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		var env whitelist.Envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			return nil, err
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			return nil, err
		}
		var d whitelist.Document
		return &d, json.Unmarshal(raw, &d)
	}
	first, err := version()
	if err != nil {
		t.Fatal(err)
	}

	// Sign in, change the one-time password, approve the service.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrfRE := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	var csrf string
	do := func(method, path string, form url.Values) *http.Response {
		t.Helper()
		var body io.Reader
		if form != nil {
			form.Set("csrf", csrf)
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if m := csrfRE.FindSubmatch(b); m != nil {
			csrf = string(m[1])
		}
		return res
	}
	do("GET", "/sign-in", nil)
	do("POST", "/sign-in", url.Values{"email": {"lead@example.org"}, "password": {user.Password}})
	do("GET", "/account/password", nil)
	if r := do("POST", "/account/password", url.Values{"current": {user.Password}, "new": {"a long new password"}, "confirm": {"a long new password"}}); r.StatusCode != 303 {
		t.Fatalf("change password: %d", r.StatusCode)
	}
	do("GET", "/review/"+org+"/"+svc, nil)
	if r := do("POST", "/review/"+org+"/"+svc, url.Values{"status": {"approved"}}); r.StatusCode != 303 {
		t.Fatalf("decision: %d", r.StatusCode)
	}
	next, err := version()
	if err != nil {
		t.Fatalf("no new version pushed: %v", err)
	}
	if next.Version <= first.Version {
		t.Fatalf("pushed version %d after %d", next.Version, first.Version)
	}
	for _, p := range next.Policies {
		if p.Org == org && p.Service == svc && p.Status == whitelist.Approved {
			return
		}
	}
	t.Fatalf("the pushed whitelist does not approve %s at %s", svc, org)
}

func TestUserAddRefusesBadInput(t *testing.T) {
	data := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"user", "add", "a@example.org", "--role", "root"}, "role"},
		{[]string{"user", "add", "a@example.org", "--role", "org-admin"}, "--org"},
		{[]string{"user", "add", "not-an-email", "--role", "viewer"}, "email"},
		{[]string{"user", "add", "--role", "viewer"}, "usage"},
		{[]string{"api-token", "create", "nobody@example.org"}, "no such account"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := Main(append([]string{"admin", "--data", data}, c.args...), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q (want %q)", c.args, code, errb.String(), c.want)
		}
	}
	// A good one prints the password once, in words a person can follow.
	out := run(t, "admin", "--data", data, "user", "add", "ok@example.org", "--role", "viewer")
	if !regexp.MustCompile(`One-time password: [a-z2-9]{4}(-[a-z2-9]{4}){4}\n`).MatchString(out) {
		t.Fatalf("user add output: %q", out)
	}
}
