package reports

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/helper/keyring"
	"github.com/detour-project/detour/helper/paths"
	"github.com/detour-project/detour/shared/privacypass"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/shared/whitelist"
)

// CredentialKey is the keyring entry holding the device credential.
const CredentialKey = "device-credential"

// Options configure a Reporter.
type Options struct {
	Dirs    paths.Dirs
	Config  *config.Store
	Secrets keyring.Store // nil: enrolment is impossible, reports cannot be made
	Log     *slog.Logger
	// Publish sends an event to every client (reports-changed,
	// service-approved).
	Publish func(typ string, data any)
	// MinDelay and MaxDelay bound the random delay before a report is sent
	// (default 30 s and 10 min). Both zero in tests means "send at once".
	MinDelay, MaxDelay time.Duration
	// RefillDelay bounds the random wait before the stash is topped up
	// (default 30 min), so fetching is not lined up with spending.
	RefillDelay time.Duration
	// StashSize is how many tokens to keep ready (default 8).
	StashSize int
	// Backoff is the first retry delay while the hub is away (default 5 s),
	// doubling with jitter up to MaxBackoff (default 30 min).
	Backoff, MaxBackoff time.Duration
	// HTTPTimeout bounds each hub request (default 30 s).
	HTTPTimeout time.Duration
	Now         func() time.Time
}

// Reporter owns the queue, the stash and the sender.
type Reporter struct {
	opts  Options
	store diskStore

	mu         sync.Mutex // guards the files and the fields below
	sent       int
	lastErr    string
	credential string // cached: keyring calls can be slow
	kick       chan struct{}

	sendMu sync.Mutex // one send at a time, so an item is never sent twice at once
}

// New opens the reporter's state under opts.Dirs.State.
func New(opts Options) (*Reporter, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Publish == nil {
		opts.Publish = func(string, any) {}
	}
	if opts.MinDelay == 0 && opts.MaxDelay == 0 {
		opts.MinDelay, opts.MaxDelay = 30*time.Second, 10*time.Minute
	}
	if opts.MaxDelay < opts.MinDelay {
		opts.MaxDelay = opts.MinDelay
	}
	if opts.RefillDelay <= 0 {
		opts.RefillDelay = 30 * time.Minute
	}
	if opts.StashSize <= 0 {
		opts.StashSize = 8
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 5 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Minute
	}
	if opts.HTTPTimeout <= 0 {
		opts.HTTPTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reporter{opts: opts, store: diskStore{dir: filepath.Join(opts.Dirs.State, "reports")}, kick: make(chan struct{}, 1)}
	if err := r.store.ensure(); err != nil {
		return nil, err
	}
	if opts.Secrets != nil {
		if c, err := opts.Secrets.Get(CredentialKey); err == nil {
			r.credential = c
		}
	}
	if err := r.reconcile(); err != nil {
		return nil, err
	}
	return r, nil
}

// reconcile removes from the stash any token a queued report already holds:
// a crash between binding a token and removing it from the stash leaves it
// in both, and it must never pay for a second report.
func (r *Reporter) reconcile() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	items, err := r.store.items()
	if err != nil {
		return err
	}
	st, _ := r.store.stash()
	bound := map[string]bool{}
	for _, it := range items {
		if it.Token != "" {
			bound[it.Token] = true
		}
	}
	kept := st.Tokens[:0]
	for _, t := range st.Tokens {
		if !bound[t] {
			kept = append(kept, t)
		}
	}
	if len(kept) != len(st.Tokens) {
		st.Tokens = kept
		return r.store.putStash(st)
	}
	return nil
}

// Enrolled reports whether this device holds a credential and an
// organisation.
func (r *Reporter) Enrolled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.credential != "" && r.opts.Config.Get().Org != ""
}

// Status is the "reports" status section.
func (r *Reporter) Status() protocol.ReportsStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusLocked()
}

func (r *Reporter) statusLocked() protocol.ReportsStatus {
	items, _ := r.store.items()
	st := protocol.ReportsStatus{Queued: len(items), Sent: r.sent, Failed: r.store.failedCount(), DeviceRevoked: r.store.revoked()}
	if r.lastErr != "" {
		e := r.lastErr
		st.LastError = &e
	}
	return st
}

func (r *Reporter) changed() {
	r.mu.Lock()
	st := r.statusLocked()
	r.mu.Unlock()
	r.opts.Publish(protocol.EventReportsChanged, protocol.ReportsChanged{Queued: st.Queued, Sent: st.Sent, Failed: st.Failed})
}

// ErrNotEnrolled is returned by Enqueue before enrolment.
var ErrNotEnrolled = errors.New("reports: this device is not enrolled (detour enrol --hub URL --code CODE)")

// Enqueue stores a report durably and returns its id and the queue length.
// When it returns nil the report survives a crash (kill -9 included). A
// token from the stash is bound to it now when one is ready. With now set,
// the report is due at once instead of after the random delay.
func (r *Reporter) Enqueue(rep Report, now bool) (string, int, error) {
	if !r.Enrolled() {
		return "", 0, ErrNotEnrolled
	}
	r.mu.Lock()
	it := &Item{ID: newID(), Report: rep, NotBefore: r.opts.Now().Add(r.delay())}
	if now {
		it.NotBefore, it.Urgent = r.opts.Now(), true
	}
	st, _ := r.store.stash()
	if len(st.Tokens) > 0 && st.Org == rep.Org {
		it.Token = st.Tokens[0]
	}
	// The item with its token first, then the stash without it: a crash in
	// between leaves the token in both, and reconcile drops the stash copy.
	if err := r.store.putItem(it); err != nil {
		r.mu.Unlock()
		return "", 0, err
	}
	if it.Token != "" {
		st.Tokens = st.Tokens[1:]
		if err := r.store.putStash(st); err != nil {
			r.opts.Log.Warn("reports: stash update failed", "err", err)
		}
	}
	r.rememberLocked(rep.Org, rep.Service)
	items, _ := r.store.items()
	r.mu.Unlock()
	r.changed()
	r.wake()
	return it.ID, len(items), nil
}

func (r *Reporter) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// delay is a uniformly random delay in [MinDelay, MaxDelay].
func (r *Reporter) delay() time.Duration {
	return randBetween(r.opts.MinDelay, r.opts.MaxDelay)
}

func randBetween(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)+1))
	if err != nil {
		return hi
	}
	return lo + time.Duration(n.Int64())
}

// reportedHash names an (organisation, service) pair in reported.json
// without spelling it out on disk.
func reportedHash(org, service string) string {
	sum := sha256.Sum256([]byte("detour-reported\x00" + org + "\x00" + service))
	return hex.EncodeToString(sum[:16])
}

func (r *Reporter) rememberLocked(org, service string) {
	h := reportedHash(org, service)
	list := r.store.reported()
	if slices.Contains(list, h) {
		return
	}
	if err := r.store.putReported(append(list, h)); err != nil {
		r.opts.Log.Warn("reports: remember reported service", "err", err)
	}
}

// OnWhitelist tells the person, locally, when their organisation now
// approves a service they reported, and forgets that report. The hub never
// learns who reported: this is worked out from the whitelist every helper
// receives.
func (r *Reporter) OnWhitelist(doc *whitelist.Document) {
	if doc == nil {
		return
	}
	org := r.opts.Config.Get().Org
	r.mu.Lock()
	list := r.store.reported()
	if len(list) == 0 {
		r.mu.Unlock()
		return
	}
	var approved []protocol.ServiceApproved
	for _, p := range doc.Policies {
		if p.Org != org || p.Status != whitelist.Approved {
			continue
		}
		h := reportedHash(org, p.Service)
		if i := slices.Index(list, h); i >= 0 {
			list = slices.Delete(list, i, i+1)
			name := p.Service
			for _, s := range doc.Services {
				if s.ID == p.Service {
					name = s.Name
				}
			}
			approved = append(approved, protocol.ServiceApproved{Service: p.Service, Name: name})
		}
	}
	if len(approved) > 0 {
		if err := r.store.putReported(list); err != nil {
			r.opts.Log.Warn("reports: update reported services", "err", err)
		}
	}
	r.mu.Unlock()
	for _, a := range approved {
		r.opts.Publish(protocol.EventServiceApproved, a)
	}
}

// api returns the hub client, the credential and the stash, or
// ErrNotEnrolled.
func (r *Reporter) api() (*hubAPI, string, error) {
	cfg := r.opts.Config.Get()
	r.mu.Lock()
	cred := r.credential
	revoked := r.store.revoked()
	r.mu.Unlock()
	if cfg.Hub == "" || cfg.Org == "" || cred == "" {
		return nil, "", ErrNotEnrolled
	}
	if revoked {
		return nil, "", ErrDeviceRevoked
	}
	return newHubAPI(cfg.Hub, r.opts.HTTPTimeout), cred, nil
}

// Refill fetches tokens until the stash holds StashSize. A batch cut short
// by a crash or a dropped connection is sent again, identically, first
// (batch.go).
func (r *Reporter) Refill(ctx context.Context) error {
	api, cred, err := r.api()
	if err != nil {
		return err
	}
	r.mu.Lock()
	st, _ := r.store.stash()
	inFlight := r.store.pending() != nil
	r.mu.Unlock()
	want := r.opts.StashSize - len(st.Tokens)
	if want <= 0 && !inFlight {
		return nil
	}
	toks, issuerName, key, err := r.fetch(ctx, api, cred, st, max(want, 1))
	if isRevocation(err) {
		if merr := r.markRevoked(); merr != nil {
			return merr
		}
		return ErrDeviceRevoked
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, _ := r.store.stash()
	if cur.IssuerKey.KeyID != key.KeyID || cur.IssuerName != issuerName {
		cur.Tokens = nil // made for a key that no longer signs
	}
	cur.IssuerKey, cur.IssuerName = key, issuerName
	cur.Hub, cur.Org = r.opts.Config.Get().Hub, r.opts.Config.Get().Org
	cur.Tokens = append(cur.Tokens, toks...)
	if err := r.store.putStash(cur); err != nil {
		return err
	}
	// Only once the tokens are on disk is the batch done.
	return r.store.dropPending()
}

// batch returns the batch to send for key: the one in flight if it was made
// for the same key and is from today, or a new one of n requests, written
// to disk before anything is sent.
func (r *Reporter) batch(n int, key IssuerKey, name string) (*pendingBatch, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if p := r.store.pending(); p != nil && p.KeyID == key.KeyID && p.IssuerName == name && now.Sub(p.Created) < pendingTTL {
		return p, nil
	}
	p, err := newPendingBatch(n, key.KeyID, name, now)
	if err != nil {
		return nil, fmt.Errorf("reports: token batch: %w", err)
	}
	if err := r.store.putPending(p); err != nil {
		return nil, fmt.Errorf("reports: token batch: %w", err)
	}
	return p, nil
}

// fetch gets finished tokens (n, or the size of the batch in flight). A 409
// carries the issuer's current key; the request is made again once for it.
func (r *Reporter) fetch(ctx context.Context, api *hubAPI, cred string, st *Stash, n int) ([]string, string, IssuerKey, error) {
	key, name := st.IssuerKey, st.IssuerName
	for attempt := 0; ; attempt++ {
		pk, err := key.parse()
		if err != nil {
			return nil, "", IssuerKey{}, fmt.Errorf("reports: stash: %w", err)
		}
		c, err := privacypass.NewClient(pk)
		if err != nil {
			return nil, "", IssuerKey{}, err
		}
		b, err := r.batch(n, key, name)
		if err != nil {
			return nil, "", IssuerKey{}, err
		}
		rnd := b.random()
		reqs := make([]string, b.N)
		pend := make([]*privacypass.Pending, b.N)
		for i := range b.N {
			q, p, err := c.Request(rnd, privacypass.ReportChallenge(name))
			if err != nil {
				return nil, "", IssuerKey{}, err
			}
			reqs[i], pend[i] = base64.StdEncoding.EncodeToString(q), p
		}
		var out tokensResult
		err = api.do(ctx, api.tokens, "POST", "/api/v1/tokens", cred, map[string]any{"token_requests": reqs}, &out)
		var he *HubError
		if errors.As(err, &he) && he.Status == 409 && attempt == 0 {
			var k IssuerKey
			if raw, ok := he.Body["issuer_key"]; ok && jsonInto(raw, &k) == nil && k.KeyID != "" {
				// Take a new key only if the hub publishes it to everyone
				// for this organisation: a key for this device alone would
				// mark its tokens.
				if err := api.published(ctx, r.opts.Config.Get().Org, k); err != nil {
					return nil, "", IssuerKey{}, err
				}
				key = k
				if raw, ok := he.Body["issuer_name"]; ok {
					jsonInto(raw, &name)
				}
				continue
			}
		}
		if err != nil {
			return nil, "", IssuerKey{}, err
		}
		if len(out.TokenResponses) != b.N {
			return nil, "", IssuerKey{}, fmt.Errorf("reports: hub answered %d tokens for %d requests", len(out.TokenResponses), b.N)
		}
		toks := make([]string, b.N)
		for i, resp := range out.TokenResponses {
			sig, err := base64.StdEncoding.DecodeString(resp)
			if err != nil {
				return nil, "", IssuerKey{}, fmt.Errorf("reports: token response %d: %w", i, err)
			}
			tok, err := c.Finalize(pend[i], sig)
			if err != nil {
				return nil, "", IssuerKey{}, fmt.Errorf("reports: token response %d: %w", i, err)
			}
			toks[i] = base64.StdEncoding.EncodeToString(tok.Marshal())
		}
		return toks, name, key, nil
	}
}
