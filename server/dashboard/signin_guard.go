package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/detour-project/detour/server/store"
)

// Sign-in throttling that an attacker cannot turn into a denial of service
// (OWASP Authentication and Credential Stuffing cheat sheets: "slow brute
// force" with device cookies; back-off rather than lock-out).
//
// Every failed password counts against keys, each with its own back-off:
// after a few free failures the key must wait 1 s, then 2 s, 4 s… up to 15
// minutes before its next attempt is even checked, and a success clears it.
// Which keys an attempt counts against depends on who makes it:
//
//   - a browser that signed in to this account before carries a device
//     cookie (an HMAC the hub made at that sign-in): it counts only against
//     its own key, so a flood from anywhere else never stops it;
//   - any other attempt counts against the account-from-this-source key,
//     the source's key (many accounts from one place), and, with a much
//     larger allowance, the account's own key (guessing spread over many
//     sources), and then against the hub's global bucket, which bounds the
//     password hashing a hub does.
//
// An attempt refused by one key spends nothing from the others, the global
// bucket included. The state is in the database, so every hub of a cluster
// applies the same limits; the keys are HMACs (a secret in the database),
// so neither an address nor an email is stored, and rows go after a day
// without failures.
type signinGuard struct {
	db      *store.DB
	secret  []byte
	now     func() time.Time
	proxies []netip.Prefix
}

// signinMigrations are the guard's tables, in a domain of their own.
var signinMigrations = []store.Step{{Version: 1, SQL: `
CREATE TABLE signin_backoff (
	key        TEXT PRIMARY KEY,  -- HMAC of kind and value
	failures   INTEGER NOT NULL,
	next_at    BIGINT NOT NULL,   -- unix seconds: no attempt checked before
	updated_at BIGINT NOT NULL    -- unix seconds of the last failure
);
CREATE TABLE signin_secret (id INTEGER PRIMARY KEY, secret TEXT NOT NULL);`}}

// Allowances: failures a key may have before it backs off.
const (
	freeAccountSource = 5
	freeSource        = 20
	freeAccount       = 50
	freeDevice        = 10
	freeSecondFactor  = 5
	maxBackoff        = 15 * time.Minute
	forgetAfter       = 24 * time.Hour
	deviceCookie      = "detour_device"
	deviceLife        = 180 * 24 * time.Hour
)

func newSigninGuard(ctx context.Context, db *store.DB, now func() time.Time, proxies []netip.Prefix) (*signinGuard, error) {
	if err := db.Migrate(ctx, "dashboard_signin", signinMigrations); err != nil {
		return nil, err
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	// Every hub must use one secret: the first to start writes it.
	q := `INSERT INTO signin_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING`
	if _, err := db.ExecContext(ctx, q, hex.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("dashboard: sign-in secret: %w", err)
	}
	var s string
	if err := db.QueryRowContext(ctx, `SELECT secret FROM signin_secret WHERE id = 1`).Scan(&s); err != nil {
		return nil, fmt.Errorf("dashboard: sign-in secret: %w", err)
	}
	secret, err := hex.DecodeString(s)
	if err != nil || len(secret) < 32 {
		return nil, errors.New("dashboard: sign-in secret in the database is malformed")
	}
	return &signinGuard{db: db, secret: secret, now: now, proxies: proxies}, nil
}

// limitKey is one back-off key: its stored (hashed) name and allowance.
type limitKey struct {
	hash string
	free int
}

func (g *signinGuard) key(kind, value string, free int) limitKey {
	m := hmac.New(sha256.New, g.secret)
	m.Write([]byte(kind + "\x00" + value))
	return limitKey{hash: hex.EncodeToString(m.Sum(nil)[:16]), free: free}
}

// source names where a request comes from: the peer's address, or, from a
// trusted proxy, the last address in X-Forwarded-For that is not one; an
// IPv6 address by its /64 (one household or device).
func (g *signinGuard) source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return "unknown"
	}
	if g.trusted(addr) {
		parts := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(parts) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[i]))
			if err != nil {
				break
			}
			addr = a
			if !g.trusted(a) {
				break
			}
		}
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

func (g *signinGuard) trusted(a netip.Addr) bool {
	for _, p := range g.proxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// keysFor returns the keys an attempt counts against, and whether it comes
// from a browser with this account's device cookie.
func (g *signinGuard) keysFor(r *http.Request, email string) ([]limitKey, bool) {
	if nonce, ok := g.deviceNonce(r, email); ok {
		return []limitKey{g.key("device", nonce, freeDevice)}, true
	}
	src := g.source(r)
	return []limitKey{
		g.key("account-source", email+"\x00"+src, freeAccountSource),
		g.key("source", src, freeSource),
		g.key("account", email, freeAccount),
	}, false
}

// wait is how long until every key allows an attempt (0: now).
func (g *signinGuard) wait(ctx context.Context, keys []limitKey) (time.Duration, error) {
	now := g.now().Unix()
	var longest int64
	for _, k := range keys {
		var next, updated int64
		err := g.db.QueryRowContext(ctx, `SELECT next_at, updated_at FROM signin_backoff WHERE key = ?`, k.hash).Scan(&next, &updated)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("dashboard: sign-in back-off: %w", err)
		}
		if now-updated < int64(forgetAfter/time.Second) && next-now > longest {
			longest = next - now
		}
	}
	return time.Duration(longest) * time.Second, nil
}

// backoff is the wait after failures: none within the allowance, then
// doubling from 1 s to maxBackoff.
func backoff(failures, free int) time.Duration {
	if failures < free {
		return 0
	}
	d := math.Pow(2, float64(failures-free)) * float64(time.Second)
	if d > float64(maxBackoff) {
		return maxBackoff
	}
	return time.Duration(d)
}

// failed counts a wrong password against keys.
func (g *signinGuard) failed(ctx context.Context, keys []limitKey) error {
	now := g.now().Unix()
	stale := now - int64(forgetAfter/time.Second)
	for _, k := range keys {
		var n int
		err := g.db.QueryRowContext(ctx, `INSERT INTO signin_backoff (key, failures, next_at, updated_at) VALUES (?, 1, 0, ?)
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN signin_backoff.updated_at < ? THEN 1 ELSE signin_backoff.failures + 1 END,
				updated_at = excluded.updated_at
			RETURNING failures`, k.hash, now, stale).Scan(&n)
		if err != nil {
			return fmt.Errorf("dashboard: sign-in back-off: %w", err)
		}
		next := now + int64(backoff(n, k.free)/time.Second)
		if _, err := g.db.ExecContext(ctx, `UPDATE signin_backoff SET next_at = ? WHERE key = ?`, next, k.hash); err != nil {
			return fmt.Errorf("dashboard: sign-in back-off: %w", err)
		}
	}
	if now%64 == 0 { // now and then, forget keys quiet for a day
		g.db.ExecContext(ctx, `DELETE FROM signin_backoff WHERE updated_at < ?`, stale)
	}
	return nil
}

// succeeded clears keys: the person knew the password.
func (g *signinGuard) succeeded(ctx context.Context, keys []limitKey) {
	for _, k := range keys {
		g.db.ExecContext(ctx, `DELETE FROM signin_backoff WHERE key = ?`, k.hash)
	}
}

// deviceValue makes a device cookie for email: NONCE.ISSUED.MAC.
func (g *signinGuard) deviceValue(email string) string {
	b := make([]byte, 16)
	rand.Read(b)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	issued := strconv.FormatInt(g.now().Unix(), 10)
	return nonce + "." + issued + "." + g.deviceMAC(email, nonce, issued)
}

func (g *signinGuard) deviceMAC(email, nonce, issued string) string {
	m := hmac.New(sha256.New, g.secret)
	m.Write([]byte("device\x00" + email + "\x00" + nonce + "\x00" + issued))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// deviceNonce checks the request's device cookie against email.
func (g *signinGuard) deviceNonce(r *http.Request, email string) (string, bool) {
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return "", false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 3 {
		return "", false
	}
	issued, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || g.now().Sub(time.Unix(issued, 0)) > deviceLife {
		return "", false
	}
	want := g.deviceMAC(email, parts[0], parts[1])
	if subtle.ConstantTimeCompare([]byte(want), []byte(parts[2])) != 1 {
		return "", false
	}
	return parts[0], true
}

// signInAllowed applies the guard before a password is checked: a key in
// back-off answers 429 with Retry-After; then an attempt without a device
// cookie takes from the global bucket. ok false means it has answered.
func (d *Dashboard) signInAllowed(w http.ResponseWriter, r *http.Request, email string) ([]limitKey, bool) {
	keys, trusted := d.guard.keysFor(r, email)
	wait, err := d.guard.wait(r.Context(), keys)
	if err != nil {
		d.fail(w, r, nil, err)
		return nil, false
	}
	if wait > 0 || (!trusted && !d.throttle.allowGlobal()) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait/time.Second))))
		d.renderSignIn(w, r, http.StatusTooManyRequests, "signin.throttled")
		return nil, false
	}
	return keys, true
}

// signInSucceeded clears the attempt's keys and gives the browser a device
// cookie for this account (a new one each time); the caller goes on to a
// second factor or the session.
func (d *Dashboard) signInSucceeded(w http.ResponseWriter, r *http.Request, email string, keys []limitKey) {
	d.guard.succeeded(r.Context(), keys)
	d.setCookie(w, r, deviceCookie, d.guard.deviceValue(email), deviceLife, http.SameSiteStrictMode)
}
