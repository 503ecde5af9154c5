// Package dashboard is the hub's IT dashboard: server-rendered pages (sign
// in, overview, service, organisation, cross-organisation matrix, review
// queue, filtering contacts, audit log) with CSV and JSON export of every
// table, and GET /api/v1/aggregates. Every count comes from the aggregates
// package, which applies k-anonymity before anything reaches a page.
//
// Security model: local accounts (argon2id), server-side sessions whose
// ids are stored hashed, a synchronizer CSRF token per session checked on
// every POST, sign-in back-off per account, source and device cookie
// (signin_guard.go; addresses only as keyed hashes, on the sign-in route
// alone), a strict Content-Security-Policy (no inline script or
// style), and a role check on the server for every route.
package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/server/masterkey"
	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/text"
	"github.com/detour-project/detour/shared/whitelist"
)

//go:embed assets
var assetFS embed.FS

// govukCSS names the compiled GOV.UK stylesheet, which `make build` writes
// (node extension/build.mjs; it is not committed). Naming the file, not just
// the folder, makes a `go build` without it fail ("pattern
// assets/govuk/govuk.css: no matching files found": run `make build`)
// instead of building a hub whose pages are unstyled.
//
//go:embed assets/govuk/govuk.css
var govukCSS []byte

//go:embed templates/*.html
var templateFS embed.FS

// Options configure a Dashboard.
type Options struct {
	DB *store.DB
	// Catalog returns the hub's catalog; nil until the whitelist domain is
	// set up (pages then show no policies and decisions are refused).
	Catalog func() catalog.Service
	Privacy aggregates.Privacy
	Log     *slog.Logger
	// Secure marks cookies Secure even for plain-HTTP requests: the hub is
	// behind a TLS-terminating proxy. Requests with r.TLS set always are.
	Secure bool
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time
	// Codes are the enrolment codes and devices (the reports domain); nil
	// hides the codes pages.
	Codes Codes
	// SSO lists the OpenID Connect providers people may sign in with;
	// nil: local accounts only. SSONow is the ID token verifier's clock
	// (time.Now when nil; tests move it).
	SSO    *SSOConfig
	SSONow func() time.Time
	// TrustedProxies are the load balancers or proxies in front of the hub:
	// a request from one of them is from the last address in its
	// X-Forwarded-For that is not one (for sign-in limits per source).
	TrustedProxies []netip.Prefix
	// RequireTOTP makes sector admins with a local account set up a second
	// factor before anything else (serve --require-totp).
	RequireTOTP bool
	// SecretKeys seal second-factor secrets at rest: the first seals, any
	// opens (the hub's master key, then a single hub's seal-file key). With
	// none, secrets are stored plain; only tests do that.
	SecretKeys []*masterkey.Key
}

// Dashboard serves the IT dashboard.
type Dashboard struct {
	opt      Options
	tmpl     *template.Template
	throttle *throttle
	guard    *signinGuard
	assets   fs.FS
	ix       atomic.Pointer[index] // the current whitelist's index; see index
	hooks    hooks                 // invitation hooks by kind
	sso      *sso
}

// New migrates the dashboard's tables and parses its templates.
func New(ctx context.Context, opt Options) (*Dashboard, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Catalog == nil {
		opt.Catalog = func() catalog.Service { return nil }
	}
	if err := opt.DB.Migrate(ctx, "dashboard", Migrations); err != nil {
		return nil, err
	}
	if err := opt.DB.Migrate(ctx, "forum", forumMigrations); err != nil {
		return nil, err
	}
	if err := opt.DB.Migrate(ctx, "directory", directoryMigrations); err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	sub, _ := fs.Sub(assetFS, "assets")
	if opt.SSO != nil {
		if err := opt.SSO.check(); err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
	}
	if opt.SSONow == nil {
		opt.SSONow = time.Now
	}
	guard, err := newSigninGuard(ctx, opt.DB, opt.Now, opt.TrustedProxies)
	if err != nil {
		return nil, err
	}
	d := &Dashboard{opt: opt, tmpl: tmpl, throttle: newThrottle(), guard: guard, assets: sub, sso: &sso{cfg: opt.SSO, now: opt.SSONow}}
	d.OnInvitationAccepted(KindOwner, d.ownerAccepted)
	if err := d.resealSecrets(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Routes adds the dashboard's routes to mux. Every page route names the
// check it needs; none is reachable without one.
func (d *Dashboard) Routes(mux *http.ServeMux) {
	page := func(pattern string, check func(*User, *http.Request) bool, h func(http.ResponseWriter, *http.Request, *session)) {
		mux.Handle(pattern, d.headers(d.signedIn(check, h)))
	}
	mux.Handle("GET /assets/", d.headers(http.StripPrefix("/assets/", http.FileServerFS(d.assets))))
	mux.Handle("GET /sign-in", d.headers(http.HandlerFunc(d.signInForm)))
	mux.Handle("POST /sign-in", d.headers(http.HandlerFunc(d.signIn)))
	page("POST /sign-out", anyone, d.signOut)
	page("GET /account/password", anyone, d.passwordForm)
	page("POST /account/password", anyone, d.changePassword)
	page("GET /account/totp", anyone, d.totpPage)
	page("POST /account/totp", anyone, d.enableTOTP)
	page("POST /account/totp/off", anyone, d.disableTOTP)
	mux.Handle("GET /sign-in/code", d.headers(http.HandlerFunc(d.codeForm)))
	mux.Handle("POST /sign-in/code", d.headers(http.HandlerFunc(d.checkCode)))
	page("GET /{$}", anyone, d.overview)
	page("GET /services/{id}", anyone, d.servicePage)
	page("GET /orgs", anyone, d.orgsPage)
	page("GET /orgs/{id}", orgReader, d.orgPage)
	page("GET /matrix", anyone, d.matrixPage)
	page("GET /review", anyone, d.reviewQueue)
	page("GET /review/{org}/{service}", orgReader, d.reviewItem)
	page("POST /review/{org}/{service}", orgDecider, d.reviewDecide)
	page("POST /review/{org}/{service}/comments", orgDecider, d.reviewComment)
	page("GET /contacts", sectorOnly, d.contactsPage)
	page("POST /contacts", sectorOnly, d.contactSave)
	page("GET /contacts/{id}", sectorOnly, d.contactEdit)
	page("POST /contacts/{id}", sectorOnly, d.contactSave)
	page("GET /audit", anyone, d.auditPage)
	page("GET /people", admins, d.peoplePage)
	page("POST /people", admins, d.invite)
	page("GET /people/{email}", admins, d.personPage)
	page("POST /people/{email}/role", sectorOnly, d.changeRole)
	page("POST /people/{email}/remove", admins, d.removePerson)
	page("POST /invitations/{id}/revoke", admins, d.revokeInvitation)
	mux.Handle("GET /sso/{id}/start", d.headers(http.HandlerFunc(d.ssoStart)))
	mux.Handle("GET /sso/{id}/callback", d.headers(http.HandlerFunc(d.ssoCallback)))
	mux.Handle("GET /invite/{token}/sso/{id}", d.headers(http.HandlerFunc(d.ssoInvite)))
	mux.Handle("GET /invite/{token}", d.headers(http.HandlerFunc(d.invitationForm)))
	mux.Handle("POST /invite/{token}", d.headers(http.HandlerFunc(d.acceptInvitationForm)))
	page("GET /catalog", sectorOnly, d.catalogPage)
	page("POST /catalog", sectorOnly, d.serviceSave)
	page("GET /catalog/{id}", sectorOnly, d.serviceEdit)
	page("POST /catalog/{id}", sectorOnly, d.serviceSave)
	page("GET /tokens", admins, d.tokensPage)
	page("POST /tokens", admins, d.createToken)
	page("POST /tokens/{id}/revoke", admins, d.revokeToken)
	page("GET /codes", admins, d.codesPage)
	page("POST /codes", admins, d.createCode)
	page("GET /codes/{id}", admins, d.codePage)
	page("POST /codes/{id}/revoke", admins, d.revokeCode)
	page("GET /agreements", owners, d.agreementsPage)
	page("POST /agreements", owners, d.proposeAgreement)
	page("GET /agreements/{service}", owners, d.agreementPage)
	page("POST /agreements/{service}/answer", owners, d.answerAgreement)
	page("POST /agreements/{service}/posts", owners, d.postAgreement)
	page("GET /common-ground", anyone, d.commonGroundPage)
	page("GET /directory", owners, d.directoryPage)
	page("POST /directory/me", owners, d.saveEntry)
	page("POST /directory/invite", sectorOnly, d.inviteOwner)
	page("GET /forum", owners, d.forumPage)
	page("GET /forum/open", owners, d.openServiceThread)
	page("GET /forum/services/{id}", owners, d.serviceThread)
	page("POST /forum/services/{id}/posts", owners, d.postServiceThread)
	mux.Handle("GET /api/v1/aggregates", http.HandlerFunc(d.apiAggregates))
}

// Role checks, each given the signed-in user and the request.
func anyone(*User, *http.Request) bool         { return true }
func sectorOnly(u *User, _ *http.Request) bool { return u.Role == RoleSectorAdmin }
func orgReader(u *User, r *http.Request) bool  { return u.CanSeeOrg(pathOrg(r)) }
func orgDecider(u *User, r *http.Request) bool { return u.CanDecide(pathOrg(r)) }
func pathOrg(r *http.Request) string {
	if o := r.PathValue("org"); o != "" {
		return o
	}
	return r.PathValue("id")
}

// csp allows only the hub's own files: no inline script or style anywhere,
// so an injected string can never run.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// secure says whether the browser reached the hub over HTTPS: directly,
// through a TLS proxy the hub was told about, or through one that says so
// with X-Forwarded-Proto. Trusting that header can only add the Secure flag
// (a client lying about it locks itself out of its own cookie), so it is
// safe to honour; no forwarded address is ever read.
func (d *Dashboard) secure(r *http.Request) bool {
	return r.TLS != nil || d.opt.Secure || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// headers sets the security headers every dashboard response carries.
func (d *Dashboard) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		if d.secure(r) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if l := r.URL.Query().Get("lang"); valid(l) {
			d.setCookie(w, r, langCookie, l, 365*24*time.Hour, http.SameSiteLaxMode)
		}
		if !strings.HasPrefix(r.URL.Path, "/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// multilineFields are the form fields that hold several lines (textareas);
// every other field is one line. Name a new textarea here.
var multilineFields = map[string]bool{"comment": true, "note": true, "reason": true, "body": true, "message": true, "hosts": true, "features": true}

// checkForm applies the hub's text rule (server/text) to every value of a
// posted form before any handler sees it, so no handler can store a control
// character or answer 500 on one: textarea line breaks become LF first.
func checkForm(r *http.Request) error {
	for _, vals := range []url.Values{r.PostForm, r.Form} {
		for k, vs := range vals {
			for i := range vs {
				vs[i] = text.Normalise(vs[i])
				if err := text.Check(k, vs[i], multilineFields[k]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

const (
	sessionCookie = "detour_session"
	preCSRFCookie = "detour_signin"
	langCookie    = "detour_lang"
)

// signedIn loads the session, sends the signed-out to the sign-in page,
// refuses a user the check does not allow (403), checks the CSRF token of
// every POST, and keeps a user with a one-time password on the page that
// changes it.
func (d *Dashboard) signedIn(check func(*User, *http.Request) bool, h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An API token may read a page's export, and nothing else.
		if s, isBearer, err := d.bearerExport(r); isBearer {
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="detour"`)
				http.Error(w, "an API token reads GET exports only (?export=TABLE&format=csv|json), and this one is unknown or revoked, or the request is not one", http.StatusUnauthorized)
				return
			}
			if !check(s.user, r) {
				http.Error(w, "this token's role may not read that", http.StatusForbidden)
				return
			}
			h(w, r, s)
			return
		}
		var id string
		if c, err := r.Cookie(sessionCookie); err == nil {
			id = c.Value
		}
		s, err := loadSession(r.Context(), d.opt.DB, id)
		if err != nil {
			if !errors.Is(err, errNoUser) {
				d.fail(w, r, nil, err)
				return
			}
			if r.Method == http.MethodPost {
				d.status(w, r, nil, http.StatusForbidden, "error.signed_out")
				return
			}
			http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				d.status(w, r, s, http.StatusBadRequest, "error.bad_form")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
				d.status(w, r, s, http.StatusForbidden, "error.csrf")
				return
			}
			if err := checkForm(r); err != nil {
				d.opt.Log.Info("dashboard: form refused", "route", r.URL.Path, "err", err)
				d.status(w, r, s, http.StatusBadRequest, "error.control_characters")
				return
			}
		}
		if s.user.MustChange && r.URL.Path != "/account/password" && r.URL.Path != "/sign-out" {
			http.Redirect(w, r, "/account/password", http.StatusSeeOther)
			return
		}
		if d.totpRequired(s.user) && !s.user.TOTP && r.URL.Path != "/account/totp" && r.URL.Path != "/account/password" && r.URL.Path != "/sign-out" {
			http.Redirect(w, r, "/account/totp", http.StatusSeeOther)
			return
		}
		if !check(s.user, r) {
			d.status(w, r, s, http.StatusForbidden, "error.forbidden")
			return
		}
		h(w, r, s)
	})
}

// setCookie sets a cookie for the whole dashboard; a negative maxAge deletes
// it (net/http then sends Max-Age=0, which tells the browser to drop it now).
func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration, same http.SameSite) {
	age := int(maxAge / time.Second)
	if maxAge < 0 {
		age = -1
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: d.secure(r),
		SameSite: same, MaxAge: age})
}

func (d *Dashboard) signInForm(w http.ResponseWriter, r *http.Request) {
	d.renderSignIn(w, r, http.StatusOK, "")
}

func (d *Dashboard) renderSignIn(w http.ResponseWriter, r *http.Request, code int, errKey string) {
	// Before there is a session, the sign-in form is protected by a
	// double-submit token: a random cookie that the form must echo.
	tok := d.preSessionToken(w, r)
	p := d.newPage(r, nil, "signin.title")
	p.CSRF = tok
	p.Error = errKey
	p.Email = r.PostFormValue("email")
	p.Form = d.ssoButtons()
	d.render(w, r, code, "signin", p)
}

// Forms shown before a session exists (sign-in, the second factor, an
// invitation) carry their CSRF token in a short-lived cookie of their own,
// set by preSessionToken and checked by preSessionForm.
func (d *Dashboard) preSessionToken(w http.ResponseWriter, r *http.Request) string {
	tok := randomToken(32)
	d.setCookie(w, r, preCSRFCookie, tok, time.Hour, http.SameSiteStrictMode)
	return tok
}

// preSessionForm reads a form posted before a session exists (at most max
// bytes) and checks its CSRF token; false means the answer has been sent.
func (d *Dashboard) preSessionForm(w http.ResponseWriter, r *http.Request, max int64) bool {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	if err := r.ParseForm(); err != nil {
		d.status(w, r, nil, http.StatusBadRequest, "error.bad_form")
		return false
	}
	c, err := r.Cookie(preCSRFCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		d.status(w, r, nil, http.StatusForbidden, "error.csrf")
		return false
	}
	return true
}

func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	if !d.preSessionForm(w, r, 16<<10) {
		return
	}
	if err := checkForm(r); err != nil {
		d.renderSignIn(w, r, http.StatusBadRequest, "error.control_characters")
		return
	}
	email := normEmail(r.PostFormValue("email"))
	keys, ok := d.signInAllowed(w, r, email)
	if !ok {
		return
	}
	u, err := authenticate(r.Context(), d.opt.DB, email, r.PostFormValue("password"))
	if errors.Is(err, errNoUser) {
		if err := d.guard.failed(r.Context(), keys); err != nil {
			d.fail(w, r, nil, err)
			return
		}
		d.renderSignIn(w, r, http.StatusUnauthorized, "signin.wrong")
		return
	}
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	d.signInSucceeded(w, r, email, keys)
	if u.TOTP {
		d.beginSecondFactor(w, r, u.Email)
		return
	}
	// A new session id at every sign-in, and the browser's previous session
	// (if any) ends: an id planted before sign-in is worth nothing after.
	d.startSession(w, r, u.Email)
}

func (d *Dashboard) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_sessions WHERE id_hash = ?`, sha(c.Value))
	}
	d.setCookie(w, r, sessionCookie, "", -1, http.SameSiteLaxMode)
	http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
}

func (d *Dashboard) passwordForm(w http.ResponseWriter, r *http.Request, s *session) {
	p := d.newPage(r, s, "password.title")
	d.render(w, r, http.StatusOK, "password", p)
}

func (d *Dashboard) changePassword(w http.ResponseWriter, r *http.Request, s *session) {
	p := d.newPage(r, s, "password.title")
	cur, nw, again := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")
	switch {
	case !d.throttle.allow(s.user.Email):
		p.Error = "signin.throttled"
	case func() bool { _, err := authenticate(r.Context(), d.opt.DB, s.user.Email, cur); return err != nil }():
		p.Error = "password.wrong_current"
	case passwordProblem(nw, s.user.Email, s.user.Org) != "":
		p.Error = passwordProblem(nw, s.user.Email, s.user.Org)
	case nw != again:
		p.Error = "password.mismatch"
	case nw == cur:
		p.Error = "password.same"
	}
	if p.Error != "" {
		d.render(w, r, http.StatusBadRequest, "password", p)
		return
	}
	if err := setPassword(r.Context(), d.opt.DB, s.user.Email, nw); err != nil {
		d.fail(w, r, s, err)
		return
	}
	// A new password ends every other session of the account.
	c, _ := r.Cookie(sessionCookie)
	d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_sessions WHERE email = ? AND id_hash <> ?`, s.user.Email, sha(c.Value))
	d.audit(r.Context(), s.user.Email, s.user.Org, "password-changed", s.user.Email, "")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// doc is the latest whitelist, or an empty one before the catalog exists.
// index is the look-up index of the current whitelist, built once per
// published version rather than on every request: every page needs it, and
// the catalog publishes each version as a new document that is never changed
// afterwards, so the document's pointer says whether the index is current.
func (d *Dashboard) index() *index {
	doc := d.doc()
	if ix := d.ix.Load(); ix != nil && ix.doc == doc {
		return ix
	}
	ix := newIndex(doc)
	d.ix.Store(ix)
	return ix
}

func (d *Dashboard) doc() *whitelist.Document {
	if c := d.opt.Catalog(); c != nil {
		if doc := c.Document(); doc != nil {
			return doc
		}
	}
	return &whitelist.Document{}
}

func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	d.opt.Log.Error("dashboard", "route", r.URL.Path, "err", err)
	d.status(w, r, s, http.StatusInternalServerError, "error.internal")
}

func (d *Dashboard) status(w http.ResponseWriter, r *http.Request, s *session, code int, key string) {
	p := d.newPage(r, s, "error.title")
	p.Error = key
	d.render(w, r, code, "error", p)
}
