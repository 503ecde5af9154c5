package hub

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/detour-project/detour/server/connlimit"
)

// Handler is the hub's HTTP handler: every route, behind a request log that
// records method, route pattern, status and duration and never the client's
// address, its forwarded-for headers or the query string.
//
// In front of the routes: a deadline on every request body (shorter on the
// report routes, whose bodies are a few hundred bytes), and a gate on the
// report routes, so that a flood of them holds a bounded number of
// handlers and database connections while the dashboard and the whitelist
// keep answering.
func (h *Hub) Handler() http.Handler {
	reportGate := connlimit.Gate(h.reportConcurrency(), 100*time.Millisecond,
		func() { h.Metrics.Refused("report-routes") }, h.Mux)
	reports := connlimit.Body(reportBodyTimeout, reportGate)
	others := connlimit.Body(bodyTimeout, h.Mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if isReportRoute(r.URL.Path) {
			reports.ServeHTTP(sw, r)
		} else {
			others.ServeHTTP(sw, r)
		}
		_, pattern := h.Mux.Handler(r)
		took := time.Since(start)
		if h.Metrics != nil {
			h.Metrics.Request(pattern, sw.status, took.Seconds())
		}
		if h.Log != nil {
			h.Log.Info("request", "method", r.Method, "route", pattern, "status", sw.status,
				"ms", took.Milliseconds())
		}
	})
}

// Body deadlines: a report, a token batch or an enrolment is under 64 KiB
// and a helper sends it at once; a dashboard form may come from a person on
// a slow link.
const (
	reportBodyTimeout = 5 * time.Second
	bodyTimeout       = 30 * time.Second
)

// isReportRoute says whether path is one of the helper-facing write routes
// (reports, tokens, enrolment) that a flood would aim at.
func isReportRoute(path string) bool {
	switch path {
	case "/api/v1/reports", "/api/v1/tokens", "/api/v1/enrol":
		return true
	}
	return false
}

// reportConcurrency is how many report-route requests run at once: enough
// to keep the database busy, few enough to leave it room for the others.
func (h *Hub) reportConcurrency() int {
	if h.Cfg.ReportConcurrency > 0 {
		return h.Cfg.ReportConcurrency
	}
	return 64
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (the
// WebSocket upgrade needs its Hijacker).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// DiscardLogger is for http.Server.ErrorLog: the standard library's messages
// ("http: TLS handshake error from 1.2.3.4:5678") carry client addresses.
func DiscardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// Hijack passes through to the underlying writer: gorilla/websocket asserts
// http.Hijacker on the writer it is given.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("hub: response writer cannot be hijacked")
	}
	w.status = http.StatusSwitchingProtocols
	return hj.Hijack()
}

// Flush passes through, for streamed responses.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
