package hub

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestHealthReadyMetricsAndDrain(t *testing.T) {
	engines(t, func(t *testing.T, cfg Config) {
		h := openHub(t, cfg)
		srv := serveHub(t, h)
		resp, body := get(t, srv.URL+"/healthz", nil)
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Fatalf("healthz: %d %q", resp.StatusCode, body)
		}
		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		resp, body = get(t, srv.URL+"/readyz", nil)
		if err := json.Unmarshal(body, &ready); err != nil || resp.StatusCode != 200 || ready.Status != "ready" || ready.Checks["keys"] != "ok" {
			t.Fatalf("readyz: %d %s %v", resp.StatusCode, body, err)
		}
		ws := dialWS(t, srv, nil)
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		get(t, srv.URL+"/api/v1/whitelist", nil)
		get(t, srv.URL+"/no/such/route", nil)
		resp, body = get(t, srv.URL+"/metrics", nil)
		text := string(body)
		for _, want := range []string{
			`detour_http_requests_total{route="GET /api/v1/whitelist",status="200"} 1`,
			`detour_http_requests_total{route="unmatched",status="404"} 1`,
			`detour_websocket_clients 1`,
			`detour_whitelist_version `,
			`detour_db_errors_total 0`,
			`detour_push_delivery_seconds_count`,
			`process_open_fds`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if strings.Contains(text, "127.0.0.1") {
			t.Error("/metrics names a client address")
		}

		// Draining: not ready any more, and the WebSocket client is told
		// to reconnect elsewhere.
		h.Drain()
		resp, body = get(t, srv.URL+"/readyz", nil)
		if resp.StatusCode != 503 || !strings.Contains(string(body), "shutting down") {
			t.Fatalf("readyz while draining: %d %s", resp.StatusCode, body)
		}
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart {
			t.Fatalf("WebSocket on drain: %v, want close 1012", err)
		}
		if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/whitelist/ws", nil); err == nil || resp == nil || resp.StatusCode != 503 {
			t.Fatalf("a new WebSocket while draining: %v", err)
		}
	})
}
