// Package reportstest starts a real hub for report tests: hub.Open on a
// fresh database, a small fixed catalog, an httptest server on loopback
// serving h.Handler(), and the hub's log captured for privacy assertions.
package reportstest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/server/hub"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/shared/whitelist"
)

// Catalog is a fixed catalog.Service for tests.
type Catalog struct {
	mu   sync.Mutex
	doc  *whitelist.Document
	subs []func(*whitelist.Document)
}

// Document returns the current document.
func (c *Catalog) Document() *whitelist.Document {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doc
}

// SetPolicy records p and publishes a new version.
func (c *Catalog) SetPolicy(ctx context.Context, p whitelist.Policy, actor string) (int64, error) {
	c.mu.Lock()
	next := *c.doc
	next.Policies = append(append([]whitelist.Policy(nil), c.doc.Policies...), p)
	next.Version++
	c.doc = &next
	subs := append([]func(*whitelist.Document){}, c.subs...)
	c.mu.Unlock()
	for _, f := range subs {
		f(&next)
	}
	return next.Version, nil
}

// OnPublish registers f.
func (c *Catalog) OnPublish(f func(*whitelist.Document)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = append(c.subs, f)
}

// Doc is the test catalog: two organisations and three services.
func Doc() *whitelist.Document {
	now := time.Now().UTC()
	return &whitelist.Document{
		Schema: 1, Version: 1, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Categories: whitelist.Categories,
		Services: []whitelist.Service{
			{ID: "google-docs", Name: "Google Docs", Vendor: "Google", Category: "documents",
				Hosts: []string{"docs.google.com", "drive.google.com"}, URL: "https://docs.google.com/", Features: []string{"co-editing"}},
			{ID: "zoom", Name: "Zoom", Vendor: "Zoom", Category: "video", Hosts: []string{"zoom.us"}, URL: "https://zoom.us/"},
			{ID: "cryptpad", Name: "CryptPad", Vendor: "XWiki", Category: "documents", Hosts: []string{"cryptpad.fr"}, URL: "https://cryptpad.fr/"},
		},
		Organisations: []whitelist.Organisation{
			{ID: "org-a", Name: "Example Council A", Sector: "local-government"},
			{ID: "org-b", Name: "Example Health Board B", Sector: "health"},
		},
		Policies: []whitelist.Policy{
			{Org: "org-a", Service: "google-docs", Status: "blocked", Alternatives: []string{"cryptpad"}},
			{Org: "org-a", Service: "cryptpad", Status: "approved"},
		},
	}
}

// Hub is a running test hub.
type Hub struct {
	*hub.Hub
	URL     string
	Catalog *Catalog
	Server  *httptest.Server

	logMu sync.Mutex
	log   bytes.Buffer

	mu        sync.Mutex
	intercept func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

// Intercept routes every request through f (nil: straight to the hub), to
// take the hub down, slow it or hang it mid-request.
func (h *Hub) Intercept(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.intercept = f
}

// Held is a hub that stores each report but holds its answer back until
// Release: the window in which a client that dies has sent a report the hub
// kept but never heard the hub take.
type Held struct {
	committed chan struct{}
	release   chan struct{}
	once      sync.Once
	mu        sync.Mutex
	statuses  []int
}

// HoldReportAnswers makes /api/v1/reports behave as Held says; other routes
// pass straight through.
func (h *Hub) HoldReportAnswers() *Held {
	held := &Held{committed: make(chan struct{}, 64), release: make(chan struct{})}
	h.Intercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != "/api/v1/reports" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		held.mu.Lock()
		held.statuses = append(held.statuses, rec.Code)
		held.mu.Unlock()
		select {
		case held.committed <- struct{}{}:
		default:
		}
		select {
		case <-held.release:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	return held
}

// Committed receives once for each report the hub has stored.
func (held *Held) Committed() <-chan struct{} { return held.committed }

// Release lets held and later answers through.
func (held *Held) Release() { held.once.Do(func() { close(held.release) }) }

// Statuses are the hub's answers so far (202 accepted, 200 resend, ...).
func (held *Held) Statuses() []int {
	held.mu.Lock()
	defer held.mu.Unlock()
	return append([]int(nil), held.statuses...)
}

// Down makes the hub drop every connection, as a hub that is away would.
func Down(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// serveKeys stands in for GET /api/v1/keys until the whitelist domain
// serves it: no whitelist keys, and the issuer keys from h.IssuerKeys.
func (h *Hub) serveKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.IssuerKeys(r.Context())
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"whitelist_keys": []any{}, "issuer_keys": keys})
}

type lockedWriter struct{ h *Hub }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.h.logMu.Lock()
	defer w.h.logMu.Unlock()
	return w.h.log.Write(p)
}

// Log is everything the hub logged so far.
func (h *Hub) Log() string {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return h.log.String()
}

// Start opens a hub on dsn ("" for SQLite in a temporary folder) and serves
// it on 127.0.0.1. Everything stops when the test ends.
func Start(t testing.TB, dsn string) *Hub {
	t.Helper()
	th := &Hub{Catalog: &Catalog{doc: Doc()}}
	log := slog.New(slog.NewTextHandler(lockedWriter{th}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.Open(ctx, hub.Config{DataDir: t.TempDir(), DSN: dsn}, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.Catalog = th.Catalog
	th.Hub = h
	handler := h.Handler()
	keysMissing := false
	if _, p := h.Mux.Handler(httptest.NewRequest("GET", "/api/v1/keys", nil)); p == "" {
		keysMissing = true
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		th.mu.Lock()
		icpt := th.intercept
		th.mu.Unlock()
		next := handler
		if keysMissing && r.Method == "GET" && r.URL.Path == "/api/v1/keys" {
			next = http.HandlerFunc(th.serveKeys)
		}
		if icpt != nil {
			icpt(w, r, next)
			return
		}
		next.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = hub.DiscardLogger()
	srv.Start()
	th.Server = srv
	th.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		cancel()
		h.Close()
	})
	return th
}

// Dump renders every row of every table as text, for asserting that
// nothing stored carries an address or a path.
func Dump(ctx context.Context, db *store.DB) (string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if db.Dialect() == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return "", fmt.Errorf("dump: tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		if err := dumpTable(ctx, db, tbl, &b); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func dumpTable(ctx context.Context, db *store.DB, tbl string, b *strings.Builder) error {
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+tbl)
	if err != nil {
		return fmt.Errorf("dump %s: %w", tbl, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	fmt.Fprintf(b, "== %s %v\n", tbl, cols)
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("dump %s: %w", tbl, err)
		}
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				fmt.Fprintf(b, "%s\t", x)
			case sql.RawBytes:
				fmt.Fprintf(b, "%s\t", x)
			default:
				fmt.Fprintf(b, "%v\t", x)
			}
		}
		b.WriteByte('\n')
	}
	return rows.Err()
}
