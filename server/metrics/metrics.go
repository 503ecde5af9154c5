// Package metrics is the hub's Prometheus instrumentation: one registry per
// hub (so tests can run several hubs in one process) holding the detour_*
// series an operator watches, plus the Go runtime's and the process's own
// (open descriptors among them). No series has a label that could hold a
// client's address, a credential or free text: routes are the mux's
// patterns and refusal reasons a short fixed vocabulary.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are one hub's series.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	reports  *prometheus.CounterVec
	tokens   prometheus.Counter
	refused  *prometheus.CounterVec
	evicted  prometheus.Counter
	delivery prometheus.Histogram
	propag   prometheus.Histogram
}

// New makes a hub's registry with its series.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "detour_http_requests_total", Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "detour_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route pattern.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "detour_reports_total", Help: "Reports received: accepted, duplicate (a resend, not counted again) or refused, with the refusal's reason.",
		}, []string{"result", "reason"}),
		tokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "detour_tokens_issued_total", Help: "Blind token signatures issued to devices.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "detour_connections_refused_total", Help: "Connections or WebSocket clients refused because a limit was reached, by limit.",
		}, []string{"limit"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "detour_connections_evicted_total", Help: "Stalled or idle connections closed to make room for a new one at the connection cap.",
		}),
		delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "detour_push_delivery_seconds", Help: "From a version's publication on this hub to its frame written to one WebSocket client.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		propag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "detour_whitelist_propagation_seconds", Help: "From a version's commit (on any hub or admin command) to its publication on this hub.",
			Buckets: []float64{.005, .01, .05, .1, .25, .5, 1, 2, 5, 10, 30},
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.reports, m.tokens, m.refused, m.evicted, m.delivery, m.propag)
	return m
}

// Handler serves the registry in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Gauge registers a gauge read from f at each scrape (WebSocket clients,
// the published version).
func (m *Metrics) Gauge(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Counter registers a counter read from f at each scrape (database
// errors, counted by the store).
func (m *Metrics) Counter(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Request records one answered request.
func (m *Metrics) Request(route string, status int, seconds float64) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(seconds)
}

// Report records one report's outcome ("accepted", "duplicate",
// "refused") and, when refused, its reason class.
func (m *Metrics) Report(result, reason string) { m.reports.WithLabelValues(result, reason).Inc() }

// TokensIssued records n blind signatures.
func (m *Metrics) TokensIssued(n int) { m.tokens.Add(float64(n)) }

// Refused records a connection or client refused at limit.
func (m *Metrics) Refused(limit string) { m.refused.WithLabelValues(limit).Inc() }

// Evicted records a connection closed to make room at the cap.
func (m *Metrics) Evicted() { m.evicted.Inc() }

// Delivered records one pushed frame's delay.
func (m *Metrics) Delivered(seconds float64) { m.delivery.Observe(seconds) }

// Propagated records a version's delay from commit to this hub.
func (m *Metrics) Propagated(seconds float64) { m.propag.Observe(seconds) }
