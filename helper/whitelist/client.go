package whitelist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/sysproxy"
	"github.com/detour-project/detour/shared/protocol"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// Defaults for Options.
const (
	// DefaultInterval is how often the agent polls the hub besides the push:
	// the push makes new versions arrive at once, the poll repairs a missed
	// push. It is also how long the hub may stay silent before the copy is
	// called stale.
	DefaultInterval = 30 * time.Minute
	// MaxEnvelope bounds what is read from the hub, over HTTP and WebSocket.
	MaxEnvelope = 8 << 20
)

// Errors callers tell apart with errors.Is.
var (
	ErrNoHub          = errors.New("no hub configured: run detour enrol")
	ErrHubUnreachable = errors.New("hub unreachable")
	ErrHubRefused     = errors.New("the hub refused this device: run detour enrol")
	// ErrRollback ends a message that says which versions: "version 4 is
	// older than version 5 accepted before; refusing a rollback".
	ErrRollback = errors.New("refusing a rollback")
	ErrConflict = errors.New("whitelist version is one accepted before but its content differs")
	// ErrExpired refuses a document that has already expired when it
	// arrives, however new its version: the hub no longer vouches for it, so
	// it must not replace a fresh copy (or set the rollback floor). A copy
	// that expires while held is still used, and called stale.
	ErrExpired = errors.New("whitelist document had already expired when it arrived")
)

// Options configure a Client. Settings is called at each use, so that an
// enrolment or a key rotation written to the config later takes effect
// without a restart.
type Options struct {
	CachePath string
	// VersionsPath keeps the highest version accepted from each hub, so that
	// a lost or damaged cache does not lower the bar (highwater.go); by
	// default VersionsName beside the cache.
	VersionsPath string
	Settings     func() config.Config
	Log          *slog.Logger
	HTTP         *http.Client  // default: a client with a 30 s timeout
	Interval     time.Duration // default DefaultInterval
	Now          func() time.Time
	// Header, if set, adds headers to every request to the hub, HTTP and
	// WebSocket: the device credential of a hub that does not publish its
	// members' policies (DESIGN.md, "The hub API").
	Header func() http.Header
}

// Client holds the agent's verified copy and keeps it in sync.
type Client struct {
	opt      Options
	acceptMu sync.Mutex           // serialises version decisions, so rollback checks are atomic
	high     map[string]highWater // by hubID; guarded by acceptMu

	mu          sync.Mutex
	cur         *Copy
	lastContact time.Time
	reachable   *bool
	listeners   []func(*wl.Document)

	kickPoll, kickPush chan struct{}
}

// New makes a client and loads the cache, verifying it again with the
// pinned keys. A cache that is missing, corrupted, tampered with or signed by
// a key no longer pinned is logged and ignored; the next sync replaces it.
func New(opt Options) *Client {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: sysproxy.Transport()}
	}
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Settings == nil {
		opt.Settings = func() config.Config { return config.Config{} }
	}
	if opt.VersionsPath == "" && opt.CachePath != "" {
		opt.VersionsPath = filepath.Join(filepath.Dir(opt.CachePath), VersionsName)
	}
	c := &Client{opt: opt, high: map[string]highWater{}, kickPoll: make(chan struct{}, 1), kickPush: make(chan struct{}, 1)}
	c.acceptMu.Lock()
	defer c.acceptMu.Unlock()
	c.mergeVersions()
	c.loadCache()
	return c
}

// loadCache is called with acceptMu held.
func (c *Client) loadCache() {
	st := c.opt.Settings()
	keys, err := PinnedKeys(st.WhitelistKeys)
	if err != nil {
		c.opt.Log.Info("whitelist cache not loaded", "err", err)
		return
	}
	cp, err := ReadCache(c.opt.CachePath, keys)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			c.opt.Log.Info("no whitelist cache yet", "path", c.opt.CachePath)
		} else {
			c.opt.Log.Warn("whitelist cache refused; it will be replaced on the next sync", "err", err)
		}
		return
	}
	if cp.Hub == "" {
		cp.Hub = hubID(st.Hub)
	}
	// A validly signed but older copy put in the cache's place is a
	// rollback too.
	pinned, sum := pinnedKeyStrings(st.WhitelistKeys), payloadSum(cp.Payload)
	if err := c.checkFloor(cp.Hub, pinned, cp.Doc.Version, sum); err != nil {
		c.opt.Log.Warn("whitelist cache refused; it will be replaced on the next sync", "err", err)
		return
	}
	// A cache from before the record existed, or whose record was lost,
	// sets it.
	c.raise(cp.Hub, pinned, cp.Doc.Version, sum)
	c.mu.Lock()
	c.cur, c.lastContact = cp, cp.FetchedAt
	c.mu.Unlock()
	c.opt.Log.Info("whitelist cache loaded", "version", cp.Doc.Version, "fetched_at", cp.FetchedAt)
}

// Current is the last good verified document, or nil.
func (c *Client) Current() *wl.Document {
	if cp := c.Copy(); cp != nil {
		return cp.Doc
	}
	return nil
}

// Copy is the current verified copy with its metadata, or nil.
func (c *Client) Copy() *Copy {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// OnUpdate calls f with each newly accepted document, in version order.
func (c *Client) OnUpdate(f func(*wl.Document)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, f)
}

// Stale says whether the copy should not be relied on as current: there is
// none, it has expired, or the hub has not been heard from for longer than
// the sync interval. A stale copy is still used; the person is told.
func (c *Client) Stale() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.staleLocked()
}

func (c *Client) staleLocked() bool {
	if c.cur == nil {
		return true
	}
	now := c.opt.Now()
	return now.After(c.cur.Doc.ExpiresAt) || now.Sub(c.lastContact) > c.opt.Interval
}

// Status is the agent's "whitelist" status section.
type Status struct {
	protocol.WhitelistStatus
	Hub       *string `json:"hub"`
	Reachable *bool   `json:"reachable"`
}

// Status reports the copy and the hub's state.
func (c *Client) Status() Status {
	hub := c.opt.Settings().Hub
	c.mu.Lock()
	defer c.mu.Unlock()
	var st Status
	st.Stale = c.staleLocked()
	if hub != "" {
		st.Hub = &hub
	}
	if c.reachable != nil {
		r := *c.reachable
		st.Reachable = &r
	}
	if cp := c.cur; cp != nil {
		v, ia, ea, fa := cp.Doc.Version, cp.Doc.IssuedAt, cp.Doc.ExpiresAt, cp.FetchedAt
		st.Version, st.IssuedAt, st.ExpiresAt, st.FetchedAt = &v, &ia, &ea, &fa
	}
	return st
}

// Suggest answers the suggest message. Without an org it uses the enrolled
// one. Without any verified copy it still names the service, from the seed
// catalog built into the binary, with no policies and stale set.
func (c *Client) Suggest(host, org string) protocol.SuggestResult {
	if org == "" {
		org = c.opt.Settings().Org
	}
	if cp := c.Copy(); cp != nil {
		return cp.Index.Suggest(host, org, c.Stale())
	}
	return SeedIndex().Suggest(host, org, true)
}

// Accept verifies env and, if it is a new version no older than any accepted
// before from the hub, makes it current, writes the cache and tells the
// listeners. It reports whether the
// copy changed. source names where env came from, for the log. env is taken
// to come from the configured hub.
func (c *Client) Accept(env *wl.Envelope, etag, source string) (bool, error) {
	return c.accept(env, etag, source, c.opt.Settings().Hub)
}

// accept is Accept for an envelope from hub. A version below the highest
// ever accepted from that hub is refused, whether or not a copy is held: the
// record outlives the cache (highwater.go).
func (c *Client) accept(env *wl.Envelope, etag, source, hub string) (bool, error) {
	c.acceptMu.Lock()
	defer c.acceptMu.Unlock()
	st := c.opt.Settings()
	keys, err := PinnedKeys(st.WhitelistKeys)
	if err != nil {
		return false, err
	}
	doc, payload, err := wl.Verify(env, keys)
	if err != nil {
		return false, fmt.Errorf("whitelist from %s refused: %w", source, err)
	}
	now := c.opt.Now()
	if !now.Before(doc.ExpiresAt) {
		return false, fmt.Errorf("whitelist from %s refused: version %d expired at %s: %w", source, doc.Version, doc.ExpiresAt.UTC().Format(time.RFC3339), ErrExpired)
	}
	hub = hubID(hub)
	pinned, sum := pinnedKeyStrings(st.WhitelistKeys), payloadSum(payload)
	c.mergeVersions()
	if err := c.checkFloor(hub, pinned, doc.Version, sum); err != nil {
		return false, fmt.Errorf("whitelist from %s refused: %w", source, err)
	}
	if cur := c.Copy(); cur != nil && cur.Hub == hub && cur.Doc.Version == doc.Version {
		if !bytes.Equal(payload, cur.Payload) {
			return false, fmt.Errorf("whitelist from %s refused: %w (version %d)", source, ErrConflict, doc.Version)
		}
		// The same document, perhaps signed again after a key rotation:
		// keep the newest signatures, so the cache still verifies once
		// the old key is unpinned, and record the keys now pinned.
		c.raise(hub, pinned, doc.Version, sum)
		c.refresh(etag, env)
		return false, nil
	}
	next := &Copy{Doc: doc, Index: NewIndex(doc), Payload: payload, Envelope: *env, Hub: hub, ETag: etag, FetchedAt: now}
	// The record before the cache: a crash in between leaves the record
	// ahead of the cache, never behind it.
	c.raise(hub, pinned, doc.Version, sum)
	if err := writeCache(c.opt.CachePath, next); err != nil {
		// The version verified: use it now, and try the disk again next time.
		c.opt.Log.Error("whitelist cache not written", "err", err)
	}
	c.mu.Lock()
	c.cur, c.lastContact = next, now
	listeners := append([]func(*wl.Document){}, c.listeners...)
	c.mu.Unlock()
	c.opt.Log.Info("whitelist accepted", "version", doc.Version, "from", source)
	for _, f := range listeners {
		f(doc)
	}
	return true, nil
}

// refresh records that the hub confirmed the copy held is current; env, if
// not nil, is that copy's verified envelope as the hub signs it now.
func (c *Client) refresh(etag string, env *wl.Envelope) {
	now := c.opt.Now()
	c.mu.Lock()
	if c.cur == nil {
		c.mu.Unlock()
		return
	}
	next := *c.cur
	next.FetchedAt = now
	if etag != "" {
		next.ETag = etag
	}
	if env != nil {
		next.Envelope = *env
	}
	c.cur, c.lastContact = &next, now
	c.mu.Unlock()
	if err := writeCache(c.opt.CachePath, &next); err != nil {
		c.opt.Log.Error("whitelist cache not written", "err", err)
	}
}

// touch records a sign of life from the hub (a pong, a push).
func (c *Client) touch() {
	c.mu.Lock()
	c.lastContact = c.opt.Now()
	t := true
	c.reachable = &t
	c.mu.Unlock()
}

func (c *Client) setReachable(ok bool) {
	c.mu.Lock()
	c.reachable = &ok
	c.mu.Unlock()
}

// Sync fetches from the hub now (agent.WhitelistView).
func (c *Client) Sync(ctx context.Context) error {
	_, err := c.SyncNow(ctx)
	return err
}

// SyncNow fetches GET {hub}/api/v1/whitelist with If-None-Match and accepts
// what it gets. It returns whether the copy changed.
func (c *Client) SyncNow(ctx context.Context) (bool, error) {
	st := c.opt.Settings()
	if st.Hub == "" {
		return false, ErrNoHub
	}
	if _, err := PinnedKeys(st.WhitelistKeys); err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(st.Hub, "/")+"/api/v1/whitelist", nil)
	if err != nil {
		return false, fmt.Errorf("whitelist: hub URL %q: %w", st.Hub, err)
	}
	c.addHeaders(req.Header)
	req.Header.Set("Accept", "application/json")
	// Only send the ETag of a copy that verified: a corrupted cache must be
	// replaced, not confirmed by a 304.
	if cp := c.Copy(); cp != nil && cp.ETag != "" {
		req.Header.Set("If-None-Match", cp.ETag)
	}
	resp, err := c.opt.HTTP.Do(req)
	if err != nil {
		c.setReachable(false)
		return false, fmt.Errorf("%w: %v", ErrHubUnreachable, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		if c.Copy() == nil {
			c.setReachable(true)
			return false, fmt.Errorf("whitelist: hub answered 304 but no copy is held")
		}
		c.touch()
		c.refresh(resp.Header.Get("ETag"), nil)
		return false, nil
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		// The hub is there but keeps its whitelist to enrolled devices.
		c.setReachable(true)
		return false, fmt.Errorf("%w (GET /api/v1/whitelist answered %s)", ErrHubRefused, resp.Status)
	default:
		c.setReachable(resp.StatusCode < 500)
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, fmt.Errorf("%w: GET /api/v1/whitelist answered %s", ErrHubUnreachable, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxEnvelope+1))
	if err != nil {
		c.setReachable(false)
		return false, fmt.Errorf("%w: reading the whitelist: %v", ErrHubUnreachable, err)
	}
	c.touch()
	if len(body) > MaxEnvelope {
		return false, fmt.Errorf("whitelist from %s refused: larger than %d bytes", st.Hub, MaxEnvelope)
	}
	var env wl.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return false, fmt.Errorf("whitelist from %s refused: %w: %v", st.Hub, wl.ErrMalformed, err)
	}
	return c.accept(&env, resp.Header.Get("ETag"), st.Hub, st.Hub)
}

func (c *Client) addHeaders(h http.Header) {
	if c.opt.Header == nil {
		return
	}
	for k, vs := range c.opt.Header() {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}

// Kick tells the background loops that the config may have changed (a hub
// set by a later enrolment, a new key): they re-read it at once.
func (c *Client) Kick() {
	for _, ch := range []chan struct{}{c.kickPoll, c.kickPush} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run keeps the copy in sync until ctx ends: a poll at start and then every
// interval ± 20 %, and a WebSocket on which the hub pushes each new version.
// With no hub configured both wait for Kick.
func (c *Client) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pollLoop(ctx) }()
	go func() { defer wg.Done(); c.pushLoop(ctx) }()
	wg.Wait()
}

func (c *Client) pollLoop(ctx context.Context) {
	retry := 30 * time.Second
	for {
		wait := jitter(c.opt.Interval, 0.2)
		if c.opt.Settings().Hub != "" {
			if _, err := c.SyncNow(ctx); err != nil && ctx.Err() == nil {
				c.opt.Log.Warn("whitelist sync failed", "err", err)
				// Retry sooner than the interval while the hub is away.
				wait = min(jitter(retry, 0.2), wait)
				retry = min(retry*2, c.opt.Interval)
			} else {
				retry = 30 * time.Second
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-c.kickPoll:
			t.Stop()
		}
	}
}

// jitter spreads d by ± frac, so that many helpers do not poll in step.
func jitter(d time.Duration, frac float64) time.Duration {
	return d + time.Duration((rand.Float64()*2-1)*frac*float64(d))
}
