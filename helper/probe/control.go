package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/sysproxy"
	"github.com/detour-project/detour/shared/method"
)

// Control asks a hub for its control measurement (GET /api/v1/control) of a
// catalog host, to tell "the site refuses everyone" from "this network
// interferes". It is asked only when the probe's own verdict is ambiguous,
// only if the hub advertises it (GET /api/v1/capabilities), at most a few
// times a minute, and each answer is reused for a minute. The request names
// the catalog host only: no path, no subdomain, no identifier, no
// credential (a plain client without cookies or the device's token).
type Control struct {
	// Hub returns the hub's base URL, "" when there is none.
	Hub func() string
	// HostFor maps a probed host to the catalog host to ask about, "" for
	// none (then nothing is asked), so a tenant's subdomain is never sent;
	// nil sends the host as it is.
	HostFor func(host string) string
	// Client makes the requests; nil is a plain client through the probe's
	// dialer (so the loopback guard applies).
	Client *http.Client
	// PerMinute caps requests to the hub (default 6).
	PerMinute int
	// Now is the clock (tests).
	Now func() time.Time

	mu      sync.Mutex
	offered map[string]expiring // hub URL → does it offer control
	answers map[string]controlEntry
	window  struct {
		start time.Time
		n     int
	}
}

type expiring struct {
	yes bool
	exp time.Time
}

type controlEntry struct {
	obs controlObs
	exp time.Time
}

// Control timing.
const (
	controlCache    = time.Minute
	controlCapsTTL  = 10 * time.Minute
	controlCapsMiss = time.Minute
	controlWait     = 2500 * time.Millisecond
)

func (c *Control) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Control) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return &http.Client{
		Timeout: controlWait,
		Transport: &http.Transport{
			DialContext:       newDialer().DialContext,
			Proxy:             sysproxy.HTTP,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ask returns the hub's view of host, nil when the hub offers no control
// measurement (or there is no hub), or an unavailable answer.
func (c *Control) ask(ctx context.Context, host string) *controlObs {
	if c == nil || c.Hub == nil {
		return nil
	}
	hub := strings.TrimSuffix(c.Hub(), "/")
	if hub == "" {
		return nil
	}
	if c.HostFor != nil {
		if host = c.HostFor(host); host == "" {
			return nil // not a catalog host: nothing is sent
		}
	}
	ctx, cancel := context.WithTimeout(ctx, controlWait)
	defer cancel()
	now := c.now()
	c.mu.Lock()
	if c.offered == nil {
		c.offered, c.answers = map[string]expiring{}, map[string]controlEntry{}
	}
	if e, ok := c.answers[host]; ok && now.Before(e.exp) {
		c.mu.Unlock()
		o := e.obs
		return &o
	}
	caps, known := c.offered[hub]
	c.mu.Unlock()
	if !known || !now.Before(caps.exp) {
		yes, err := c.capabilities(ctx, hub)
		caps = expiring{yes: yes, exp: now.Add(controlCapsTTL)}
		if err != nil {
			caps.exp = now.Add(controlCapsMiss)
		}
		c.mu.Lock()
		c.offered[hub] = caps
		c.mu.Unlock()
	}
	if !caps.yes {
		return nil
	}
	c.mu.Lock()
	limit := c.PerMinute
	if limit <= 0 {
		limit = 6
	}
	if now.Sub(c.window.start) >= time.Minute {
		c.window.start, c.window.n = now, 0
	}
	if c.window.n >= limit {
		c.mu.Unlock()
		return &controlObs{host: host, unavailable: true, err: "rate limited here"}
	}
	c.window.n++
	c.mu.Unlock()
	o := c.fetch(ctx, hub, host)
	if !o.unavailable {
		c.mu.Lock()
		c.answers[host] = controlEntry{obs: o, exp: now.Add(controlCache)}
		c.mu.Unlock()
	}
	return &o
}

func (c *Control) get(ctx context.Context, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s", resp.Status)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return resp.StatusCode, fmt.Errorf("not JSON: %w", err)
	}
	return resp.StatusCode, nil
}

func (c *Control) capabilities(ctx context.Context, hub string) (bool, error) {
	var caps struct {
		Control bool `json:"control"`
	}
	st, err := c.get(ctx, hub+"/api/v1/capabilities", &caps)
	if st == http.StatusNotFound {
		return false, nil // an older hub: no capabilities, no control
	}
	return caps.Control, err
}

func (c *Control) fetch(ctx context.Context, hub, host string) controlObs {
	var a struct {
		Host     string `json:"host"`
		Status   int    `json:"status"`
		Title    string `json:"title"`
		Length   int    `json:"length"`
		Public   bool   `json:"public"`
		Resolved bool   `json:"resolved"`
		Error    string `json:"error"`
	}
	if _, err := c.get(ctx, hub+"/api/v1/control?host="+url.QueryEscape(host), &a); err != nil {
		return controlObs{host: host, unavailable: true, err: err.Error()}
	}
	return controlObs{host: host, status: a.Status, title: tidyText(a.Title, 200), length: a.Length, public: a.Public,
		resolved: a.Resolved || a.Status != 0, err: tidyText(a.Error, 200)}
}

// lastAnswer is the status and title of the probe's last answered hop.
func lastAnswer(obs *observation) (int, string) {
	for i := len(obs.hops) - 1; i >= 0; i-- {
		if h := obs.hops[i]; h.answered {
			return h.status, pageTitleText(h.body)
		}
	}
	return 0, ""
}

// withControl weighs the hub's outside view against an ambiguous verdict.
func (j *judge) withControl(obs *observation, out outcome) outcome {
	c := obs.control
	if c == nil || !ambiguous(out) {
		return out
	}
	if c.unavailable {
		j.say("control.unavailable", "error", c.err)
		return out
	}
	status := fmt.Sprint(c.status)
	switch {
	case out.method == method.DNSNXDomain && c.resolved:
		// The name exists outside: this network's resolver hides it.
		j.say("control.exists", "host", c.host, "status", status)
		return outcome{method: method.DNSNXDomain, confidence: 0.9}
	case out.method == method.DNSNXDomain:
		// The hub cannot find the name either: it does not exist anywhere.
		j.say("control.nowhere", "host", c.host, "error", c.err)
		return outcome{method: method.SiteDown, confidence: 0.7}
	case c.status == 0:
		// The hub could not fetch it, yet something here answered in the
		// site's name: that says nothing either way.
		j.say("control.unreachable", "host", c.host, "error", c.err)
		return out
	}
	local, title := lastAnswer(obs)
	sameTitle := strings.EqualFold(strings.TrimSpace(title), strings.TrimSpace(c.title))
	switch {
	case local != 0 && c.status == local && (sameTitle || local != http.StatusOK):
		j.say("control.same", "host", c.host, "status", status)
		return outcome{method: method.Reachable, confidence: 0.75, sitesOwn: true}
	case c.status >= 200 && c.status < 400:
		j.say("control.differs", "host", c.host, "status", status, "title", c.title)
		out.possible = false
		out.confidence = max(out.confidence, 0.7)
		return out
	}
	return out
}
