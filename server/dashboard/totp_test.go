package dashboard

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// TestTOTPVectors are RFC 6238 Appendix B's test vectors (8 digits, 30 s).
func TestTOTPVectors(t *testing.T) {
	seeds := map[string]struct {
		h   func() hash.Hash
		key string
	}{
		"SHA1":   {sha1.New, "12345678901234567890"},
		"SHA256": {sha256.New, "12345678901234567890123456789012"},
		"SHA512": {sha512.New, "1234567890123456789012345678901234567890123456789012345678901234"},
	}
	for _, v := range []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	} {
		s := seeds[v.alg]
		if got := totpAt(s.h, []byte(s.key), time.Unix(v.unix, 0), 30*time.Second, 8); got != v.want {
			t.Errorf("T=%d %s: %s, want %s", v.unix, v.alg, got, v.want)
		}
	}
}

func TestTOTPCheckWindowAndReplay(t *testing.T) {
	secret := b32.EncodeToString([]byte("12345678901234567890"))
	at := time.Unix(1111111111, 0)
	key, _ := b32.DecodeString(secret)
	code := func(d time.Duration) string { return totpAt(sha1.New, key, at.Add(d), totpStep, totpDigits) }
	step := at.Unix() / 30
	for _, c := range []struct {
		name string
		code string
		last int64
		want int64
	}{
		{"now", code(0), 0, step},
		{"one step early", code(-30 * time.Second), 0, step - 1},
		{"one step late", code(30 * time.Second), 0, step + 1},
		{"two steps off", code(90 * time.Second), 0, 0},
		{"used already", code(0), step, 0},
		{"too short", "12345", 0, 0},
		{"spaces allowed", code(0)[:3] + " " + code(0)[3:], 0, step},
	} {
		if got := totpCheck(secret, c.code, at, c.last); got != c.want {
			t.Errorf("%s: step %d, want %d", c.name, got, c.want)
		}
	}
}

var (
	secretRE   = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
	recoveryRE = regexp.MustCompile(`<li><code>([a-z0-9-]{14})</code></li>`)
)

func codeNow(t *testing.T, secret string, d time.Duration) string {
	key, err := b32.DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return totpAt(sha1.New, key, time.Now().Add(d), totpStep, totpDigits)
}

// TestTOTPSignIn: a local account turns a second factor on; signing in
// then needs a code (never one used before) or a recovery code (once);
// a hub that requires it for sector admins sends one without it to set it
// up first and does not let it be turned off.
func TestTOTPSignIn(t *testing.T) {
	key := testSecretKey(t)
	e := newEnv(t, storetest.SQLite(t), func(o *Options) { o.RequireTOTP = true; o.SecretKeys = []*masterkey.Key{key} })
	admin := e.signIn("north-admin@example.org")
	page := admin.get("/account/totp")
	m := secretRE.FindStringSubmatch(page.body)
	if page.code != 200 || m == nil || !strings.Contains(page.body, "otpauth://totp/Detour:north-admin@example.org?") {
		t.Fatalf("set-up page: %d", page.code)
	}
	secret := m[1]
	if r := admin.post("/account/totp", url.Values{"secret": {secret}, "code": {"000000"}}); r.code != 400 {
		t.Fatalf("wrong code turned it on: %d", r.code)
	}
	r := admin.post("/account/totp", url.Values{"secret": {secret}, "code": {codeNow(t, secret, 0)}})
	rec := recoveryRE.FindAllStringSubmatch(r.body, -1)
	if r.code != 200 || len(rec) != recoveryCount {
		t.Fatalf("turn on: %d, %d recovery codes", r.code, len(rec))
	}
	if stored := storedSecret(t, e.db, "north-admin@example.org"); !masterkey.IsSealed(stored) || strings.Contains(stored, secret) {
		t.Fatalf("the secret is stored as %q, not sealed", stored)
	}
	if again := admin.get("/account/totp"); strings.Contains(again.body, rec[0][1]) || !strings.Contains(again.body, `id="totp-state"`) {
		t.Fatal("recovery codes shown again")
	}

	signIn := func(code string) (*browser, resp) {
		b := e.browser()
		b.get("/sign-in")
		r := b.post("/sign-in", url.Values{"email": {"north-admin@example.org"}, "password": {e.pw["north-admin@example.org"]}})
		if r.code != http.StatusSeeOther || r.loc != "/sign-in/code" {
			t.Fatalf("password step: %d %s", r.code, r.loc)
		}
		if h := b.get("/"); h.code != http.StatusSeeOther || h.loc != "/sign-in" {
			t.Fatalf("a session before the code: %d %s", h.code, h.loc)
		}
		b.get("/sign-in/code")
		return b, b.post("/sign-in/code", url.Values{"code": {code}})
	}
	if _, r := signIn("123456"); r.code != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d", r.code)
	}
	// The code that turned it on is spent; the next step's is not.
	if _, r := signIn(codeNow(t, secret, 0)); r.code != http.StatusUnauthorized {
		t.Fatalf("a code used already: %d", r.code)
	}
	b, r := signIn(codeNow(t, secret, totpStep))
	if r.code != http.StatusSeeOther || r.loc != "/" {
		t.Fatalf("right code: %d %s", r.code, r.loc)
	}
	if h := b.get("/"); h.code != 200 {
		t.Fatalf("after the code: %d", h.code)
	}
	// A recovery code works once.
	if _, r := signIn(rec[3][1]); r.code != http.StatusSeeOther {
		t.Fatalf("recovery code: %d", r.code)
	}
	if _, r := signIn(rec[3][1]); r.code != http.StatusUnauthorized {
		t.Fatalf("recovery code twice: %d", r.code)
	}
	// The code page without a password step sends to sign-in.
	if r := e.browser().get("/sign-in/code"); r.code != http.StatusSeeOther || r.loc != "/sign-in" {
		t.Fatalf("code page without password: %d", r.code)
	}

	// Required for sector admins: nothing else until it is set up.
	sector := e.signIn2("sector@example.org")
	if r := sector.get("/orgs"); r.code != http.StatusSeeOther || r.loc != "/account/totp" {
		t.Fatalf("sector admin without a second factor: %d %s", r.code, r.loc)
	}
	p := sector.get("/account/totp")
	s2 := secretRE.FindStringSubmatch(p.body)[1]
	if r := sector.post("/account/totp", url.Values{"secret": {s2}, "code": {codeNow(t, s2, 0)}}); r.code != 200 {
		t.Fatalf("sector admin turns it on: %d", r.code)
	}
	if r := sector.get("/orgs"); r.code != 200 {
		t.Fatalf("sector admin with a second factor: %d", r.code)
	}
	if r := sector.post("/account/totp/off", url.Values{"code": {codeNow(t, s2, totpStep)}}); r.code != http.StatusForbidden {
		t.Fatalf("required second factor turned off: %d", r.code)
	}
	// An org admin (not required) may turn it off with a code.
	if r := b.post("/account/totp/off", url.Values{"code": {rec[5][1]}}); r.code != 200 || !strings.Contains(r.body, "password alone") {
		t.Fatalf("turn off: %d", r.code)
	}
}

// signIn2 signs in without requiring the overview to answer 200 (a hub
// may send the account elsewhere first).
func (e *env) signIn2(email string) *browser {
	e.t.Helper()
	b := e.browser()
	b.get("/sign-in")
	if r := b.post("/sign-in", url.Values{"email": {email}, "password": {e.pw[email]}}); r.code != http.StatusSeeOther {
		e.t.Fatalf("sign in %s: %d", email, r.code)
	}
	if r := b.get("/"); r.code == http.StatusSeeOther && r.loc == "/account/password" {
		b.get("/account/password")
		nw := "correct horse battery staple " + email
		if r := b.post("/account/password", url.Values{"current": {e.pw[email]}, "new": {nw}, "confirm": {nw}}); r.code != http.StatusSeeOther {
			e.t.Fatalf("change password %s: %d", email, r.code)
		}
		e.pw[email] = nw
	}
	return b
}

func testSecretKey(t *testing.T) *masterkey.Key {
	t.Helper()
	k, err := masterkey.New(masterkey.Generate())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func storedSecret(t *testing.T, db *store.DB, email string) string {
	t.Helper()
	var s string
	if err := db.QueryRowContext(context.Background(), `SELECT totp_secret FROM dash_users WHERE email = ?`, email).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTOTPSecretsSealedAtRest: a dashboard starting on a database whose
// secrets are plain (a hub before sealing) or sealed with its old key (a
// single hub's seal file, before the master key) reseals them all with its
// first key, and every account's codes still work; a sealed value copied to
// another account's row does not open there; a dashboard with none of the
// keys says why instead of accepting any code.
func TestTOTPSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	oldKey, newKey := testSecretKey(t), testSecretKey(t)
	e := newEnv(t, db, nil) // no keys: stored plain, as before sealing
	plain, old := newTOTPSecret(), newTOTPSecret()
	oldSealed, err := oldKey.Seal(totpPurpose, "north-viewer@example.org", []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	for email, v := range map[string]string{"north-admin@example.org": plain, "north-viewer@example.org": oldSealed} {
		if _, err := db.ExecContext(ctx, `UPDATE dash_users SET totp_secret = ? WHERE email = ?`, v, email); err != nil {
			t.Fatal(err)
		}
	}

	opt := e.d.opt
	opt.SecretKeys = []*masterkey.Key{newKey, oldKey}
	d, err := New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	for email, secret := range map[string]string{"north-admin@example.org": plain, "north-viewer@example.org": old} {
		stored := storedSecret(t, db, email)
		if got, err := newKey.Unseal(totpPurpose, email, stored); err != nil || string(got) != secret {
			t.Fatalf("%s: stored %q is not the secret sealed with the new key: %v", email, stored, err)
		}
		if ok, err := d.secondFactorOK(ctx, email, codeNow(t, secret, 0)); err != nil || !ok {
			t.Fatalf("%s: a current code after resealing: %v %v", email, ok, err)
		}
	}

	// The admin's sealed value copied onto the viewer's row does not open.
	if _, err := db.ExecContext(ctx, `UPDATE dash_users SET totp_secret = ?, totp_step = 0 WHERE email = ?`,
		storedSecret(t, db, "north-admin@example.org"), "north-viewer@example.org"); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.secondFactorOK(ctx, "north-viewer@example.org", codeNow(t, plain, totpStep)); ok || err == nil {
		t.Fatalf("a secret moved to another account's row was used: %v %v", ok, err)
	}

	// A dashboard given only an unrelated key refuses with the reason.
	opt.SecretKeys = []*masterkey.Key{testSecretKey(t)}
	other, err := New(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := other.secondFactorOK(ctx, "north-admin@example.org", codeNow(t, plain, 2*totpStep))
	if ok || err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("wrong key: %v %v", ok, err)
	}
}
