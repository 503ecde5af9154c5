package reports_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/reports"
	"github.com/detour-project/detour/server/reports/reportstest"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/privacypass"
)

// client is a minimal device for the hub's API, written against the wire
// format rather than the helper's code, so the two are checked separately.
type client struct {
	t      *testing.T
	base   string
	cred   string
	org    string
	issuer string
	key    *privacypass.PublicKey
}

// hostileHeaders are sent with every request: none of them may reach the
// database or the log.
var hostileHeaders = map[string]string{
	"X-Forwarded-For": "203.0.113.77",
	"Forwarded":       "for=198.51.100.99;proto=https",
	"X-Real-Ip":       "192.0.2.55",
	"User-Agent":      "Mozilla/5.0 FingerprintMe/9.9",
}

func do(t *testing.T, method, url, auth string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hostileHeaders {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func enrol(t *testing.T, h *reportstest.Hub, code string) *client {
	t.Helper()
	st, out := do(t, "POST", h.URL+"/api/v1/enrol", "", mustJSON(map[string]string{"code": code}))
	if st != 200 {
		t.Fatalf("enrol: %d %v", st, out)
	}
	c := &client{t: t, base: h.URL, cred: out["device_credential"].(string), org: out["org"].(string), issuer: out["issuer_name"].(string)}
	keys := out["issuer_keys"].([]any)
	der, err := base64.RawURLEncoding.DecodeString(keys[0].(map[string]any)["public_key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if c.key, err = privacypass.ParsePublicKey(der); err != nil {
		t.Fatal(err)
	}
	return c
}

// tokens fetches n tokens, or returns the status of a refusal.
func (c *client) tokens(n int) ([]string, int) {
	c.t.Helper()
	pc, err := privacypass.NewClient(c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	var reqs []string
	var pend []*privacypass.Pending
	for range n {
		r, p, err := pc.Request(rand.Reader, privacypass.ReportChallenge(c.issuer))
		if err != nil {
			c.t.Fatal(err)
		}
		reqs = append(reqs, base64.StdEncoding.EncodeToString(r))
		pend = append(pend, p)
	}
	st, out := do(c.t, "POST", c.base+"/api/v1/tokens", c.cred, mustJSON(map[string]any{"token_requests": reqs}))
	if st != 200 {
		return nil, st
	}
	var toks []string
	for i, r := range out["token_responses"].([]any) {
		sig, _ := base64.StdEncoding.DecodeString(r.(string))
		tok, err := pc.Finalize(pend[i], sig)
		if err != nil {
			c.t.Fatal(err)
		}
		toks = append(toks, base64.StdEncoding.EncodeToString(tok.Marshal()))
	}
	return toks, 200
}

func report(org string) reports.Report {
	return reports.Report{
		Service: "google-docs", Host: "docs.google.com", Org: org, Method: "http-blockpage",
		Vendor: "zscaler", Need: "shared-document", Hour: time.Now().UTC().Truncate(time.Hour).Format(time.RFC3339),
		ClientVersion: "0.1.0",
	}
}

func send(t *testing.T, h *reportstest.Hub, r any, token string) (int, map[string]any) {
	t.Helper()
	return do(t, "POST", h.URL+"/api/v1/reports", "", mustJSON(map[string]any{"report": r, "token": token}))
}

func count(t testing.TB, h *reportstest.Hub, org, service string) int {
	t.Helper()
	var n int
	err := h.DB.QueryRowContext(context.Background(), `SELECT COALESCE(SUM(n), 0) FROM report_counts WHERE org = ? AND service = ?`, org, service).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The secrets the hostile cases try to smuggle in; none may be stored or logged.
const pathSecret = "/document/d/SECRET-DOC-ID/edit"

func TestReportsEndToEnd(t *testing.T) {
	t.Setenv("DETOUR_TOKENS_PER_DAY", "12")
	engines := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "" },
		"postgres": func(t *testing.T) string { return storetest.PostgresDSN(t) },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) { runEndToEnd(t, reportstest.Start(t, engines[name](t))) })
	}
}

func runEndToEnd(t *testing.T, h *reportstest.Hub) {
	ctx := context.Background()
	svc, err := h.OpenReports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	codeA, _, err := svc.CreateCode(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	codeB, idB, err := svc.CreateCode(ctx, "org-b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateCode(ctx, "org-nope"); err == nil {
		t.Fatal("code for an unknown organisation")
	}

	a := enrol(t, h, codeA)
	b := enrol(t, h, codeB)
	if a.org != "org-a" || b.org != "org-b" {
		t.Fatalf("orgs %q %q", a.org, b.org)
	}

	t.Run("enrolment refusals", func(t *testing.T) {
		if st, _ := do(t, "POST", h.URL+"/api/v1/enrol", "", mustJSON(map[string]string{"code": "dtr-guess"})); st != 401 {
			t.Fatalf("unknown code: %d", st)
		}
		if _, err := svc.RevokeCode(ctx, idB, false); err != nil {
			t.Fatal(err)
		}
		if st, _ := do(t, "POST", h.URL+"/api/v1/enrol", "", mustJSON(map[string]string{"code": codeB})); st != 401 {
			t.Fatalf("revoked code: %d", st)
		}
		if st, _ := do(t, "POST", h.URL+"/api/v1/enrol", "", []byte(`{"code":"x","ip":"1"}`)); st != 400 {
			t.Fatalf("unknown field: %d", st)
		}
	})

	t.Run("token refusals", func(t *testing.T) {
		good := &client{t: t, base: h.URL, key: a.key, issuer: a.issuer}
		if _, st := good.tokens(1); st != 401 {
			t.Fatalf("no credential: %d", st)
		}
		good.cred = "dvc-forged"
		if _, st := good.tokens(1); st != 401 {
			t.Fatalf("forged credential: %d", st)
		}
		// A request for org-b's key sent with org-a's credential names a key
		// that does not sign for org-a.
		wrong := &client{t: t, base: h.URL, key: b.key, issuer: a.issuer, cred: a.cred}
		if _, st := wrong.tokens(1); st != 409 {
			t.Fatalf("request for another key: %d", st)
		}
	})

	toksA, st := a.tokens(8)
	if st != 200 || len(toksA) != 8 {
		t.Fatalf("tokens: %d", st)
	}
	toksB, st := b.tokens(2)
	if st != 200 {
		t.Fatalf("tokens b: %d", st)
	}

	t.Run("accept, resend, replay", func(t *testing.T) {
		r := report("org-a")
		if st, out := send(t, h, r, toksA[0]); st != 202 {
			t.Fatalf("first send: %d %v", st, out)
		}
		if n := count(t, h, "org-a", "google-docs"); n != 1 {
			t.Fatalf("counted %d, want 1", n)
		}
		if st, out := send(t, h, r, toksA[0]); st != 200 || out["status"] != "duplicate" {
			t.Fatalf("resend: %d %v", st, out)
		}
		if n := count(t, h, "org-a", "google-docs"); n != 1 {
			t.Fatalf("resend counted: %d", n)
		}
		r2 := r
		r2.Need = "meeting"
		if st, _ := send(t, h, r2, toksA[0]); st != 409 {
			t.Fatalf("replay for another report: %d", st)
		}
		// The same report with a fresh token is a second report.
		if st, _ := send(t, h, r, toksA[1]); st != 202 {
			t.Fatalf("second token: %d", st)
		}
		if n := count(t, h, "org-a", "google-docs"); n != 2 {
			t.Fatalf("counted %d, want 2", n)
		}
	})

	t.Run("token refusals at redemption", func(t *testing.T) {
		raw, _ := base64.StdEncoding.DecodeString(toksA[2])
		forged := bytes.Clone(raw)
		rand.Read(forged[len(forged)-256:])
		short := raw[:100]
		cases := []struct {
			name  string
			r     reports.Report
			token string
		}{
			{"forged signature", report("org-a"), base64.StdEncoding.EncodeToString(forged)},
			{"another organisation's token", report("org-a"), toksB[0]},
			{"org-a token claimed for org-b", report("org-b"), toksA[2]},
			{"truncated token", report("org-a"), base64.StdEncoding.EncodeToString(short)},
			{"token not base64", report("org-a"), "!!!"},
			{"no token", report("org-a"), ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if st, out := send(t, h, c.r, c.token); st != 401 {
					t.Fatalf("%d %v", st, out)
				}
			})
		}
		// org-b's own token for org-b's report is fine.
		if st, out := send(t, h, report("org-b"), toksB[0]); st != 202 {
			t.Fatalf("org-b: %d %v", st, out)
		}
	})

	t.Run("field checks", func(t *testing.T) {
		hostile := []string{
			"<script>alert(1)</script>", "docs.google.com" + pathSecret, "https://docs.google.com/x?q=SECRET",
			"'; DROP TABLE reports; --", "127.0.0.1", "a\x00b", "ünïcödé", strings.Repeat("a", 300), "",
		}
		fields := []string{"service", "host", "org", "method", "vendor", "need", "hour", "client_version"}
		for _, f := range fields {
			for i, v := range hostile {
				if f == "vendor" && v == "" {
					continue // no vendor is allowed
				}
				t.Run(fmt.Sprintf("%s/%d", f, i), func(t *testing.T) {
					r := map[string]string{}
					json.Unmarshal(mustJSON(report("org-a")), &r)
					r[f] = v
					if st, out := send(t, h, r, toksA[3]); st != 400 {
						t.Fatalf("%s=%q: %d %v", f, v, st, out)
					}
				})
			}
		}
		wrongHost := report("org-a")
		wrongHost.Host = "zoom.us"
		subdomain := report("org-a")
		subdomain.Host = "tenant.docs.google.com"
		future := report("org-a")
		future.Hour = time.Now().UTC().Truncate(time.Hour).Add(2 * time.Hour).Format(time.RFC3339)
		old := report("org-a")
		old.Hour = time.Now().UTC().Truncate(time.Hour).Add(-8 * 24 * time.Hour).Format(time.RFC3339)
		notTruncated := report("org-a")
		notTruncated.Hour = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour + 17*time.Minute).Format(time.RFC3339)
		offset := report("org-a")
		offset.Hour = time.Now().Truncate(time.Hour).In(time.FixedZone("x", 3600)).Format(time.RFC3339)
		for name, r := range map[string]reports.Report{
			"host of another service": wrongHost, "subdomain of a catalog host": subdomain,
			"future hour": future, "hour older than 7 days": old, "minutes in hour": notTruncated, "non-UTC hour": offset,
		} {
			t.Run(name, func(t *testing.T) {
				if st, out := send(t, h, r, toksA[3]); st != 400 {
					t.Fatalf("%d %v", st, out)
				}
			})
		}
	})

	t.Run("body checks", func(t *testing.T) {
		r := mustJSON(report("org-a"))
		cases := []struct {
			name string
			body []byte
			want int
		}{
			{"unknown top-level field", []byte(`{"report":` + string(r) + `,"token":"` + toksA[3] + `","ip":"10.0.0.1"}`), 400},
			{"unknown report field", []byte(`{"report":{"url":"https://docs.google.com` + pathSecret + `"},"token":"` + toksA[3] + `"}`), 400},
			{"trailing data", []byte(`{"report":` + string(r) + `,"token":"` + toksA[3] + `"}{}`), 400},
			{"not JSON", []byte(`report=1`), 400},
			{"no report", []byte(`{"token":"` + toksA[3] + `"}`), 400},
			{"oversized", []byte(`{"report":` + string(r) + `,"token":"` + strings.Repeat("A", 20<<10) + `"}`), 413},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if st, out := do(t, "POST", h.URL+"/api/v1/reports", "", c.body); st != c.want {
					t.Fatalf("got %d %v, want %d", st, out, c.want)
				}
			})
		}
		// The token used by the refused cases above is still unspent.
		if st, out := send(t, h, report("org-a"), toksA[3]); st != 202 {
			t.Fatalf("refusals spent the token: %d %v", st, out)
		}
	})

	t.Run("daily quota", func(t *testing.T) {
		// 8 fetched above; quota is 12.
		if _, st := a.tokens(4); st != 200 {
			t.Fatalf("within quota: %d", st)
		}
		if _, st := a.tokens(1); st != 429 {
			t.Fatalf("past quota: %d", st)
		}
	})

	t.Run("keys published", func(t *testing.T) {
		keys, err := h.IssuerKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys["org-a"]) != 1 || len(keys["org-b"]) != 1 {
			t.Fatalf("keys %v", keys)
		}
		if keys["org-a"][0].KeyID != base64.RawURLEncoding.EncodeToString(a.key.ID[:]) {
			t.Fatal("published key id differs from the enrolment's")
		}
	})

	t.Run("nothing stored or logged names a client or a path", func(t *testing.T) {
		dump, err := reportstest.Dump(ctx, h.DB)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dump, "docs.google.com") || !strings.Contains(dump, "== reports") {
			t.Fatalf("dump looks empty:\n%s", dump)
		}
		assertClean(t, "database", dump)
		rows, err := h.DB.QueryContext(ctx, `SELECT private_key FROM issuer_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var pk string
			rows.Scan(&pk)
			if !strings.HasPrefix(pk, "sealed:") {
				t.Errorf("an issuer private key is stored unsealed")
			}
		}
		logText := h.Log()
		if !strings.Contains(logText, "/api/v1/reports") {
			t.Fatalf("the request log is empty: %q", logText)
		}
		assertClean(t, "log", logText)
	})
}

// assertClean fails if text holds a client address, a forwarded header's
// value, a user agent or a URL path the tests sent.
func assertClean(t *testing.T, what, text string) {
	t.Helper()
	for _, bad := range []string{"127.0.0.1", "::1", "[::1]", "203.0.113.77", "198.51.100.99", "192.0.2.55",
		"FingerprintMe", "SECRET", "/document/", "10.0.0.1", "<script>"} {
		if strings.Contains(text, bad) {
			t.Errorf("%s contains %q", what, bad)
		}
	}
}
