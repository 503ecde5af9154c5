package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/detour-project/detour/server/store"
)

// A second factor for local accounts: TOTP (RFC 6238: HOTP, RFC 4226, over
// 30-second steps, HMAC-SHA1, 6 digits — what every authenticator app
// reads from an otpauth:// URI) with ten one-time recovery codes. A code is
// accepted one step either side of now, and never twice: the last step
// used is stored, so a code seen over a shoulder is worth nothing after.
// The secret is stored as it must be to check codes; recovery codes only as
// hashes. Accounts that sign in with SSO get their second factor from the
// identity provider.

const (
	totpStep      = 30 * time.Second
	totpDigits    = 6
	recoveryCount = 10
	// secondFactorTTL bounds the time between the password and the code.
	secondFactorTTL = 5 * time.Minute
	secondCookie    = "detour_2fa"
)

// hotp is RFC 4226's HOTP value of counter under key, with digits digits.
func hotp(h func() hash.Hash, key []byte, counter uint64, digits int) string {
	mac := hmac.New(h, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// totpAt is RFC 6238's TOTP value at t (T0 = 0).
func totpAt(h func() hash.Hash, key []byte, t time.Time, step time.Duration, digits int) string {
	return hotp(h, key, uint64(t.Unix())/uint64(step/time.Second), digits)
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func newTOTPSecret() string {
	b := make([]byte, 20) // 160 bits, RFC 4226's recommended length
	rand.Read(b)
	return b32.EncodeToString(b)
}

// totpCheck finds the step at which code is valid for secret, within one
// step of now and later than last; 0 when none.
func totpCheck(secret, code string, now time.Time, last int64) int64 {
	key, err := b32.DecodeString(secret)
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if err != nil || len(code) != totpDigits {
		return 0
	}
	cur := now.Unix() / int64(totpStep/time.Second)
	for _, s := range []int64{cur - 1, cur, cur + 1} {
		if s > last && subtle.ConstantTimeCompare([]byte(hotp(sha1.New, key, uint64(s), totpDigits)), []byte(code)) == 1 {
			return s
		}
	}
	return 0
}

// otpauthURI is what an authenticator app reads (typed or pasted).
func otpauthURI(email, secret string) string {
	q := url.Values{"secret": {secret}, "issuer": {"Detour"}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + url.PathEscape("Detour:"+email) + "?" + q.Encode()
}

// newRecoveryCodes replaces email's recovery codes and returns them.
func newRecoveryCodes(ctx context.Context, tx *store.Tx, email string) ([]string, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM dash_recovery_codes WHERE email = ?`, email); err != nil {
		return nil, fmt.Errorf("dashboard: recovery codes: %w", err)
	}
	var codes []string
	for range recoveryCount {
		c := newPassword()[:14] // xxxx-xxxx-xxxx: about 59 bits
		codes = append(codes, c)
		if _, err := tx.ExecContext(ctx, `INSERT INTO dash_recovery_codes (email, code_hash) VALUES (?, ?)`, email, sha(c)); err != nil {
			return nil, fmt.Errorf("dashboard: recovery codes: %w", err)
		}
	}
	return codes, nil
}

// secondFactorOK checks a TOTP code or an unused recovery code, using it up.
func (d *Dashboard) secondFactorOK(ctx context.Context, email, code string) (bool, error) {
	var secret string
	var last int64
	err := d.opt.DB.QueryRowContext(ctx, `SELECT totp_secret, totp_step FROM dash_users WHERE email = ?`, email).Scan(&secret, &last)
	if err != nil {
		return false, fmt.Errorf("dashboard: second factor: %w", err)
	}
	if secret == "" {
		return false, nil
	}
	if secret, err = d.openSecret(email, secret); err != nil {
		return false, err
	}
	if step := totpCheck(secret, code, time.Now(), last); step != 0 {
		// Only a later step may be used next: the update fails if another
		// request used this one first.
		res, err := d.opt.DB.ExecContext(ctx, `UPDATE dash_users SET totp_step = ? WHERE email = ? AND totp_step < ?`, step, email, step)
		if err != nil {
			return false, fmt.Errorf("dashboard: second factor: %w", err)
		}
		n, _ := res.RowsAffected()
		return n == 1, nil
	}
	c := strings.ToLower(strings.TrimSpace(code))
	res, err := d.opt.DB.ExecContext(ctx, `UPDATE dash_recovery_codes SET used_at = ? WHERE email = ? AND code_hash = ? AND used_at = ''`, now(), email, sha(c))
	if err != nil {
		return false, fmt.Errorf("dashboard: second factor: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// beginSecondFactor is sign-in's first half for an account with TOTP: the
// password was right; the browser gets a short-lived cookie for the code
// page, and no session until the code is right.
func (d *Dashboard) beginSecondFactor(w http.ResponseWriter, r *http.Request, email string) {
	id := randomToken(32)
	t := time.Now().UTC()
	if _, err := d.opt.DB.ExecContext(r.Context(), `INSERT INTO dash_second_factor (id_hash, email, expires_at) VALUES (?, ?, ?)`,
		sha(id), email, t.Add(secondFactorTTL).Format(time.RFC3339)); err != nil {
		d.fail(w, r, nil, err)
		return
	}
	d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_second_factor WHERE expires_at < ?`, t.Format(time.RFC3339))
	d.setCookie(w, r, secondCookie, id, secondFactorTTL, http.SameSiteStrictMode)
	http.Redirect(w, r, "/sign-in/code", http.StatusSeeOther)
}

// pendingSecondFactor is the account waiting for its code, or "".
func (d *Dashboard) pendingSecondFactor(r *http.Request) (email, idHash string) {
	c, err := r.Cookie(secondCookie)
	if err != nil || c.Value == "" {
		return "", ""
	}
	var exp string
	err = d.opt.DB.QueryRowContext(r.Context(), `SELECT email, expires_at FROM dash_second_factor WHERE id_hash = ?`, sha(c.Value)).Scan(&email, &exp)
	if err != nil || exp < now() {
		return "", ""
	}
	return email, sha(c.Value)
}

func (d *Dashboard) codeForm(w http.ResponseWriter, r *http.Request) {
	d.renderCodeForm(w, r, http.StatusOK, "")
}

func (d *Dashboard) renderCodeForm(w http.ResponseWriter, r *http.Request, code int, errKey string) {
	if email, _ := d.pendingSecondFactor(r); email == "" {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	tok := d.preSessionToken(w, r)
	p := d.newPage(r, nil, "totp.code_title")
	p.CSRF, p.Error = tok, errKey
	d.render(w, r, code, "totp-code", p)
}

// checkCode is sign-in's second half.
func (d *Dashboard) checkCode(w http.ResponseWriter, r *http.Request) {
	if !d.preSessionForm(w, r, 4<<10) {
		return
	}
	email, idHash := d.pendingSecondFactor(r)
	if email == "" {
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	// Codes are guessed against a back-off kept in the database, so the
	// hubs of a cluster share it (only someone with the password is here).
	keys := []limitKey{d.guard.key("second-factor", email, freeSecondFactor)}
	if wait, err := d.guard.wait(r.Context(), keys); err != nil || wait > 0 {
		if err != nil {
			d.fail(w, r, nil, err)
			return
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait/time.Second))))
		d.renderCodeForm(w, r, http.StatusTooManyRequests, "signin.throttled")
		return
	}
	ok, err := d.secondFactorOK(r.Context(), email, r.PostFormValue("code"))
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	if !ok {
		if err := d.guard.failed(r.Context(), keys); err != nil {
			d.fail(w, r, nil, err)
			return
		}
		d.renderCodeForm(w, r, http.StatusUnauthorized, "totp.wrong")
		return
	}
	d.guard.succeeded(r.Context(), keys)
	d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_second_factor WHERE id_hash = ?`, idHash)
	d.setCookie(w, r, secondCookie, "", -1, http.SameSiteStrictMode)
	d.startSession(w, r, email)
}

// hasTOTP says whether email's account has a second factor.
func hasTOTP(ctx context.Context, q store.Querier, email string) (bool, error) {
	var secret string
	err := q.QueryRowContext(ctx, `SELECT totp_secret FROM dash_users WHERE email = ?`, email).Scan(&secret)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dashboard: second factor: %w", err)
	}
	return secret != "", nil
}

type totpForm struct {
	Enabled  bool
	Required bool
	Secret   string
	URI      string
	Recovery []string // shown once
	Local    bool     // false: the account signs in with SSO
}

// totpPage shows the second factor: set it up (a new secret each time the
// page is shown until one is confirmed with a code), or turn it off.
func (d *Dashboard) totpPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showTOTP(w, r, s, http.StatusOK, "", &totpForm{})
}

func (d *Dashboard) showTOTP(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, f *totpForm) {
	p := d.newPage(r, s, "totp.title")
	p.Error = errKey
	on, err := hasTOTP(r.Context(), d.opt.DB, s.user.Email)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	var pw string
	d.opt.DB.QueryRowContext(r.Context(), `SELECT pw_hash FROM dash_users WHERE email = ?`, s.user.Email).Scan(&pw)
	f.Enabled, f.Local, f.Required = on, pw != "", d.totpRequired(s.user)
	if !on && f.Secret == "" {
		f.Secret = newTOTPSecret()
	}
	if !on {
		f.URI = otpauthURI(s.user.Email, f.Secret)
	}
	p.Form = f
	d.render(w, r, code, "totp", p)
}

// enableTOTP keeps the secret once a code from it proves the app has it.
func (d *Dashboard) enableTOTP(w http.ResponseWriter, r *http.Request, s *session) {
	secret := strings.ToUpper(strings.TrimSpace(r.PostFormValue("secret")))
	f := &totpForm{Secret: secret}
	if k, err := b32.DecodeString(secret); err != nil || len(k) < 16 {
		d.showTOTP(w, r, s, http.StatusBadRequest, "totp.wrong", &totpForm{})
		return
	}
	step := totpCheck(secret, r.PostFormValue("code"), time.Now(), 0)
	if step == 0 {
		d.showTOTP(w, r, s, http.StatusBadRequest, "totp.wrong", f)
		return
	}
	sealed, err := d.sealSecret(s.user.Email, secret)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	var codes []string
	err = d.opt.DB.InTx(r.Context(), func(tx *store.Tx) error {
		res, err := tx.ExecContext(r.Context(), `UPDATE dash_users SET totp_secret = ?, totp_step = ? WHERE email = ? AND totp_secret = '' AND pw_hash <> ''`, sealed, step, s.user.Email)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errors.New("already on, or not a local account")
		}
		codes, err = newRecoveryCodes(r.Context(), tx, s.user.Email)
		return err
	})
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("dashboard: enable totp: %w", err))
		return
	}
	// Other sessions were made with the password alone.
	c, _ := r.Cookie(sessionCookie)
	d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_sessions WHERE email = ? AND id_hash <> ?`, s.user.Email, sha(c.Value))
	d.audit(r.Context(), s.user.Email, s.user.Org, "totp-enabled", s.user.Email, "")
	s.user.TOTP = true
	d.showTOTP(w, r, s, http.StatusOK, "", &totpForm{Recovery: codes})
}

// disableTOTP turns the second factor off, given a current code (or a
// recovery code). A hub that requires it for sector admins refuses.
func (d *Dashboard) disableTOTP(w http.ResponseWriter, r *http.Request, s *session) {
	if d.totpRequired(s.user) {
		d.showTOTP(w, r, s, http.StatusForbidden, "totp.required_cannot_off", &totpForm{})
		return
	}
	ok, err := d.secondFactorOK(r.Context(), s.user.Email, r.PostFormValue("code"))
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	if !ok {
		d.showTOTP(w, r, s, http.StatusBadRequest, "totp.wrong", &totpForm{})
		return
	}
	err = d.opt.DB.InTx(r.Context(), func(tx *store.Tx) error {
		if _, err := tx.ExecContext(r.Context(), `UPDATE dash_users SET totp_secret = '', totp_step = 0 WHERE email = ?`, s.user.Email); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), `DELETE FROM dash_recovery_codes WHERE email = ?`, s.user.Email)
		return err
	})
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("dashboard: disable totp: %w", err))
		return
	}
	d.audit(r.Context(), s.user.Email, s.user.Org, "totp-disabled", s.user.Email, "")
	s.user.TOTP = false
	d.showTOTP(w, r, s, http.StatusOK, "", &totpForm{})
}

// totpRequired says whether the hub requires u to have a second factor:
// sector admins with a local account, when serve --require-totp says so.
func (d *Dashboard) totpRequired(u *User) bool {
	return d.opt.RequireTOTP && u.Role == RoleSectorAdmin && u.Local
}
