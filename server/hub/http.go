package hub

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"
)

// Handler is the hub's HTTP handler: every route, behind a request log that
// records method, route pattern, status and duration and never the client's
// address, its forwarded-for headers or the query string.
func (h *Hub) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.Mux.ServeHTTP(sw, r)
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
