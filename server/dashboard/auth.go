package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/detour-project/detour/server/store"
)

// Roles a dashboard account may have.
const (
	RoleSectorAdmin = "sector-admin" // every organisation, the catalog, the contacts directory
	RoleOrgAdmin    = "org-admin"    // its own organisation's detail and policies
	RoleViewer      = "viewer"       // read only (one organisation's detail if it has one)
)

// User is a dashboard account.
type User struct {
	Email      string
	Role       string
	Org        string // required for org-admin; optional for viewer
	MustChange bool
	Local      bool // has a password (not SSO only)
	TOTP       bool // has a second factor (totp.go)
}

// CanSeeOrg says whether u may read org's detail.
func (u *User) CanSeeOrg(org string) bool {
	switch u.Role {
	case RoleSectorAdmin:
		return true
	case RoleViewer:
		return u.Org == "" || u.Org == org
	case RoleOrgAdmin:
		return u.Org == org
	}
	return false
}

// CanDecide says whether u may change org's review items and policies.
func (u *User) CanDecide(org string) bool {
	return u.Role == RoleSectorAdmin || (u.Role == RoleOrgAdmin && u.Org == org)
}

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane), chosen
// because the hub runs on small machines shared with report intake.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

func hashPassword(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("dashboard: salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// dummyHash is checked against when an account does not exist, so that a
// sign-in takes as long for an unknown name as for a wrong password.
var dummyHash, _ = hashPassword("not a real password")

func checkPassword(encoded, pw string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// newPassword makes a one-time password: 20 characters from an unambiguous
// alphabet (about 100 bits), in groups of four for reading aloud.
func newPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	var b strings.Builder
	buf := make([]byte, 20)
	rand.Read(buf)
	for i, c := range buf {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return b.String()
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }

// AddUser creates an account (or resets an existing one) and returns its
// one-time password. The password must be changed at first sign-in: the
// dashboard shows nothing else until it is.
func AddUser(ctx context.Context, db *store.DB, email, role, org string) (string, error) {
	email = normEmail(email)
	if !strings.Contains(email, "@") || len(email) > 254 {
		return "", fmt.Errorf("dashboard: %q is not an email address", email)
	}
	switch role {
	case RoleSectorAdmin:
		org = ""
	case RoleOrgAdmin:
		if org == "" {
			return "", errors.New("dashboard: an org-admin needs --org")
		}
	case RoleViewer:
	default:
		return "", fmt.Errorf("dashboard: role %q: want sector-admin, org-admin or viewer", role)
	}
	pw := newPassword()
	h, err := hashPassword(pw)
	if err != nil {
		return "", err
	}
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM dash_users WHERE email = ?`, email); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dash_sessions WHERE email = ?`, email); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO dash_users (email, role, org, pw_hash, must_change, created_at) VALUES (?, ?, ?, ?, 1, ?)`,
			email, role, org, h, now())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dashboard: add user %s: %w", email, err)
	}
	return pw, nil
}

// CreateAPIToken makes a bearer token for GET /api/v1/aggregates that acts
// with email's role. Only its hash is stored; the token is shown once.
func CreateAPIToken(ctx context.Context, db *store.DB, email, label string) (string, error) {
	email = normEmail(email)
	if _, err := getUser(ctx, db, email); err != nil {
		return "", err
	}
	tok := "dtr_" + randomToken(32)
	if _, err := db.ExecContext(ctx, `INSERT INTO dash_api_tokens (token_hash, email, label, created_at) VALUES (?, ?, ?, ?)`,
		sha(tok), email, label, now()); err != nil {
		return "", fmt.Errorf("dashboard: api token for %s: %w", email, err)
	}
	return tok, nil
}

func normEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

var errNoUser = errors.New("dashboard: no such account")

func getUser(ctx context.Context, q store.Querier, email string) (*User, error) {
	u := &User{Email: email}
	var must int
	var pw, secret string
	err := q.QueryRowContext(ctx, `SELECT role, org, must_change, pw_hash, totp_secret FROM dash_users WHERE email = ?`, email).Scan(&u.Role, &u.Org, &must, &pw, &secret)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: user %s: %w", email, err)
	}
	u.MustChange, u.Local, u.TOTP = must != 0, pw != "", secret != ""
	return u, nil
}

// authenticate checks a password; it spends the same time whether or not
// the account exists.
func authenticate(ctx context.Context, db *store.DB, email, pw string) (*User, error) {
	email = normEmail(email)
	var h string
	err := db.QueryRowContext(ctx, `SELECT pw_hash FROM dash_users WHERE email = ?`, email).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		checkPassword(dummyHash, pw)
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: sign in: %w", err)
	}
	if !checkPassword(h, pw) {
		return nil, errNoUser
	}
	return getUser(ctx, db, email)
}

func setPassword(ctx context.Context, db *store.DB, email, pw string) error {
	h, err := hashPassword(pw)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `UPDATE dash_users SET pw_hash = ?, must_change = 0 WHERE email = ?`, h, email); err != nil {
		return fmt.Errorf("dashboard: set password: %w", err)
	}
	return nil
}

// session is a signed-in browser.
type session struct {
	user *User
	csrf string
}

const sessionTTL = 8 * time.Hour

// newSession stores a session and returns the cookie value (never stored).
func newSession(ctx context.Context, db *store.DB, email string) (string, error) {
	id := randomToken(32)
	t := time.Now().UTC()
	_, err := db.ExecContext(ctx, `INSERT INTO dash_sessions (id_hash, email, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		sha(id), email, randomToken(32), t.Format(time.RFC3339), t.Add(sessionTTL).Format(time.RFC3339))
	if err != nil {
		return "", fmt.Errorf("dashboard: new session: %w", err)
	}
	// Expired sessions are swept as new ones are made.
	db.ExecContext(ctx, `DELETE FROM dash_sessions WHERE expires_at < ?`, t.Format(time.RFC3339))
	return id, nil
}

func loadSession(ctx context.Context, db *store.DB, id string) (*session, error) {
	if id == "" {
		return nil, errNoUser
	}
	var email, csrf, exp string
	err := db.QueryRowContext(ctx, `SELECT email, csrf, expires_at FROM dash_sessions WHERE id_hash = ?`, sha(id)).Scan(&email, &csrf, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: session: %w", err)
	}
	if exp < now() {
		return nil, errNoUser
	}
	u, err := getUser(ctx, db, email)
	if err != nil {
		return nil, err
	}
	return &session{user: u, csrf: csrf}, nil
}

// throttle limits sign-in attempts per account name and over all accounts,
// with token buckets. It never sees a client address: a guesser spread over
// many addresses meets the same limits as one.
type throttle struct {
	mu       sync.Mutex
	accounts map[string]*bucket
	global   bucket
	// per account: burst and refill interval; global likewise.
	accBurst, globBurst float64
	accEvery, globEvery time.Duration
	now                 func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newThrottle() *throttle {
	return &throttle{accounts: map[string]*bucket{}, accBurst: 5, accEvery: 2 * time.Minute,
		globBurst: 60, globEvery: 500 * time.Millisecond, now: time.Now}
}

func (b *bucket) take(now time.Time, burst float64, every time.Duration) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens += float64(now.Sub(b.last)) / float64(every)
		if b.tokens > burst {
			b.tokens = burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// allow takes one attempt for account; false means refuse without checking.
func (t *throttle) allow(account string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.accounts) > 10000 { // forget accounts whose buckets have refilled
		for k, b := range t.accounts {
			if now.Sub(b.last) > time.Duration(t.accBurst)*t.accEvery {
				delete(t.accounts, k)
			}
		}
	}
	b := t.accounts[account]
	if b == nil {
		b = &bucket{}
		t.accounts[account] = b
	}
	// Neither bucket is spent by an attempt the other refuses: a flood
	// that one account's bucket stops must not drain the global one.
	if !b.has(now, t.accBurst, t.accEvery) || !t.global.has(now, t.globBurst, t.globEvery) {
		return false
	}
	return b.take(now, t.accBurst, t.accEvery) && t.global.take(now, t.globBurst, t.globEvery)
}

// allowGlobal takes from the global bucket alone (the sign-in guard has
// already applied the per-key limits).
func (t *throttle) allowGlobal() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.global.take(t.now(), t.globBurst, t.globEvery)
}

// has says whether b would give an attempt now, without taking it.
func (b *bucket) has(now time.Time, burst float64, every time.Duration) bool {
	if b.last.IsZero() {
		return burst >= 1
	}
	return min(b.tokens+float64(now.Sub(b.last))/float64(every), burst) >= 1
}

// success forgets an account's failed attempts.
func (t *throttle) success(account string) {
	t.mu.Lock()
	delete(t.accounts, account)
	t.mu.Unlock()
}
