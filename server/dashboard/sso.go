package dashboard

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/detour-project/detour/server/store"
)

// SSOConfig is the hub's single sign-on configuration (`serve --sso FILE`,
// JSON): OpenID Connect providers, each for the whole hub (no org) or for
// one organisation, with the rules that map a person to a role. Local
// accounts keep working beside it (small hubs, break-glass).
type SSOConfig struct {
	Providers []SSOProvider `json:"providers"`
}

// SSOProvider is one OpenID Connect provider (e.g. a Microsoft Entra ID
// tenant). A person is admitted only when every rule given holds: their
// email address is verified and in an allowed domain, their tenant claim
// is an allowed tenant, and a role rule maps them to a role.
type SSOProvider struct {
	ID           string `json:"id"`   // in URLs: /sso/ID/start
	Name         string `json:"name"` // on the sign-in button
	Org          string `json:"org,omitempty"`
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientSecretEnv names an environment variable holding the secret,
	// so that the file need not.
	ClientSecretEnv string `json:"client_secret_env,omitempty"`
	// RedirectURL is this hub's callback as registered with the provider;
	// default: the hub's address + /sso/ID/callback.
	RedirectURL    string   `json:"redirect_url,omitempty"`
	AllowedDomains []string `json:"allowed_domains,omitempty"`
	// TenantClaim (e.g. "tid" for Entra ID) must be one of AllowedTenants.
	TenantClaim    string   `json:"tenant_claim,omitempty"`
	AllowedTenants []string `json:"allowed_tenants,omitempty"`
	// RoleClaim (e.g. "groups" or "roles") holds a string or a list of
	// strings; Roles maps a value to a dashboard role. The most powerful
	// role matched wins; DefaultRole applies when none matches ("" refuses).
	RoleClaim   string            `json:"role_claim,omitempty"`
	Roles       map[string]string `json:"roles,omitempty"`
	DefaultRole string            `json:"default_role,omitempty"`
	Scopes      []string          `json:"scopes,omitempty"`
}

// LoadSSOConfig reads and checks an SSO configuration file.
func LoadSSOConfig(path string) (*SSOConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sso: %w", err)
	}
	var c SSOConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("sso: %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("sso: %s: %w", path, err)
	}
	return &c, nil
}

var ssoIDRE = func(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func (c *SSOConfig) check() error {
	seen := map[string]bool{}
	for i := range c.Providers {
		p := &c.Providers[i]
		switch {
		case !ssoIDRE(p.ID):
			return fmt.Errorf("provider %d: id %q: use lower-case letters, digits and hyphens", i, p.ID)
		case seen[p.ID]:
			return fmt.Errorf("provider %q is named twice", p.ID)
		case p.Issuer == "" || p.ClientID == "":
			return fmt.Errorf("provider %q: issuer and client_id are required", p.ID)
		case len(p.AllowedTenants) > 0 && p.TenantClaim == "":
			return fmt.Errorf("provider %q: allowed_tenants needs tenant_claim", p.ID)
		case len(p.AllowedDomains) == 0 && len(p.AllowedTenants) == 0:
			return fmt.Errorf("provider %q: give allowed_domains or allowed_tenants: an identity provider admits people of many organisations", p.ID)
		}
		if u, err := url.Parse(p.Issuer); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return fmt.Errorf("provider %q: issuer %q must be an https URL", p.ID, p.Issuer)
		}
		for _, r := range append(mapValues(p.Roles), p.DefaultRole) {
			if r != "" && r != RoleSectorAdmin && r != RoleOrgAdmin && r != RoleViewer {
				return fmt.Errorf("provider %q: role %q: want sector-admin, org-admin or viewer", p.ID, r)
			}
			if r == RoleOrgAdmin && p.Org == "" {
				return fmt.Errorf("provider %q maps to org-admin but names no org", p.ID)
			}
			if r == RoleSectorAdmin && p.Org != "" {
				return fmt.Errorf("provider %q is for organisation %q and cannot grant sector-admin", p.ID, p.Org)
			}
		}
		if p.ClientSecretEnv != "" {
			p.ClientSecret = os.Getenv(p.ClientSecretEnv)
			if p.ClientSecret == "" {
				return fmt.Errorf("provider %q: %s is empty", p.ID, p.ClientSecretEnv)
			}
		}
		for j, d := range p.AllowedDomains {
			p.AllowedDomains[j] = strings.ToLower(strings.TrimPrefix(d, "@"))
		}
		seen[p.ID] = true
	}
	return nil
}

func isLoopback(h string) bool { return h == "127.0.0.1" || h == "::1" || h == "localhost" }

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// sso holds the providers, discovered on first use (a hub starts even when
// its identity provider is down).
type sso struct {
	cfg *SSOConfig
	now func() time.Time // the verifier's clock (tests move it)
	mu  sync.Mutex
	oid map[string]*oidc.Provider
}

func (s *sso) provider(id string) *SSOProvider {
	if s == nil || s.cfg == nil {
		return nil
	}
	for i := range s.cfg.Providers {
		if s.cfg.Providers[i].ID == id {
			return &s.cfg.Providers[i]
		}
	}
	return nil
}

func (s *sso) discover(ctx context.Context, p *SSOProvider) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.oid[p.ID]; o != nil {
		return o, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	o, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return nil, err
	}
	if s.oid == nil {
		s.oid = map[string]*oidc.Provider{}
	}
	s.oid[p.ID] = o
	return o, nil
}

// ssoRefusal is a refusal shown to the person: a message key and what the
// log records.
type ssoRefusal struct {
	key string
	err error
}

func (e *ssoRefusal) Error() string { return e.key + ": " + e.err.Error() }

func refuseSSO(key string, format string, args ...any) error {
	return &ssoRefusal{key: key, err: fmt.Errorf(format, args...)}
}

const ssoStateCookie = "detour_sso"
const ssoStateTTL = 10 * time.Minute

// maxSSOPending bounds the sign-ins under way (each a row for ssoStateTTL).
const maxSSOPending = 20000

func (d *Dashboard) oauthConfig(r *http.Request, p *SSOProvider, o *oidc.Provider) *oauth2.Config {
	redirect := p.RedirectURL
	if redirect == "" {
		redirect = d.baseURL(r) + "/sso/" + p.ID + "/callback"
	}
	scopes := p.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: o.Endpoint(), RedirectURL: redirect, Scopes: scopes}
}

// ssoStart sends the browser to the provider: authorization code flow with
// PKCE (S256), a state bound to this browser by a cookie and kept hashed
// in the database (used once), and a nonce checked in the ID token.
func (d *Dashboard) ssoStart(w http.ResponseWriter, r *http.Request) {
	p := d.sso.provider(r.PathValue("id"))
	if p == nil {
		d.status(w, r, nil, http.StatusNotFound, "error.not_found")
		return
	}
	d.ssoBegin(w, r, p, "")
}

// ssoInvite accepts an invitation by signing in with a provider: the
// provider must be for the invitation's organisation (or the whole hub),
// and the address it vouches for must be the one invited.
func (d *Dashboard) ssoInvite(w http.ResponseWriter, r *http.Request) {
	p := d.sso.provider(r.PathValue("id"))
	inv, err := invitationByToken(r.Context(), d.opt.DB, r.PathValue("token"))
	if p == nil || err != nil || (p.Org != "" && p.Org != inv.Org) {
		d.showInvitation(w, r, http.StatusNotFound, "")
		return
	}
	d.ssoBegin(w, r, p, sha(r.PathValue("token")))
}

func (d *Dashboard) ssoBegin(w http.ResponseWriter, r *http.Request, p *SSOProvider, invHash string) {
	o, err := d.sso.discover(r.Context(), p)
	if err != nil {
		d.ssoFail(w, r, discoveryRefusal(p, err))
		return
	}
	state, nonce, verifier := randomToken(32), randomToken(32), oauth2.GenerateVerifier()
	t := time.Now().UTC()
	// Anyone may start a sign-in, so the sign-ins under way are bounded:
	// a flood of starts fills this table, not the disk, and never touches
	// the password sign-in's limits.
	d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_sso_states WHERE expires_at < ?`, t.Format(time.RFC3339))
	var pending int
	if err := d.opt.DB.QueryRowContext(r.Context(), `SELECT COUNT(*) FROM dash_sso_states`).Scan(&pending); err != nil {
		d.fail(w, r, nil, fmt.Errorf("sso: count states: %w", err))
		return
	}
	if pending >= maxSSOPending {
		w.Header().Set("Retry-After", "60")
		d.status(w, r, nil, http.StatusTooManyRequests, "signin.throttled")
		return
	}
	if _, err := d.opt.DB.ExecContext(r.Context(), `INSERT INTO dash_sso_states (state_hash, provider, verifier, nonce, created_at, expires_at, invitation) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sha(state), p.ID, verifier, nonce, t.Format(time.RFC3339), t.Add(ssoStateTTL).Format(time.RFC3339), invHash); err != nil {
		d.fail(w, r, nil, fmt.Errorf("sso: store state: %w", err))
		return
	}
	// Lax: the provider's redirect back is a top-level GET from another site.
	d.setCookie(w, r, ssoStateCookie, state, ssoStateTTL, http.SameSiteLaxMode)
	http.Redirect(w, r, d.oauthConfig(r, p, o).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// ssoCallback checks everything the provider sent back, then signs the
// person in with the role the provider's rules map them to.
func (d *Dashboard) ssoCallback(w http.ResponseWriter, r *http.Request) {
	p := d.sso.provider(r.PathValue("id"))
	if p == nil {
		d.status(w, r, nil, http.StatusNotFound, "error.not_found")
		return
	}
	email, role, org, subject, invHash, err := d.ssoVerify(r, p)
	d.setCookie(w, r, ssoStateCookie, "", -1, http.SameSiteLaxMode)
	if err != nil {
		d.ssoFail(w, r, err)
		return
	}
	if invHash != "" {
		d.ssoAcceptInvitation(w, r, p, invHash, email, subject)
		return
	}
	if err := d.ssoAccount(r.Context(), p, email, role, org, subject); err != nil {
		d.ssoFail(w, r, err)
		return
	}
	d.audit(r.Context(), email, org, "sso-sign-in", email, p.ID+": "+role)
	d.startSession(w, r, email)
}

func (d *Dashboard) ssoVerify(r *http.Request, p *SSOProvider) (email, role, org, subject, invHash string, err error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return "", "", "", "", "", refuseSSO("sso.provider_error", "provider %s answered %s: %s", p.ID, e, q.Get("error_description"))
	}
	state := q.Get("state")
	c, cerr := r.Cookie(ssoStateCookie)
	if state == "" || cerr != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return "", "", "", "", "", refuseSSO("sso.state", "state missing or not this browser's")
	}
	// The state is used once: deleted whether or not what follows works.
	var provider, verifier, nonce, exp string
	err = d.opt.DB.InTx(r.Context(), func(tx *store.Tx) error {
		err := tx.QueryRowContext(r.Context(), `SELECT provider, verifier, nonce, expires_at, invitation FROM dash_sso_states WHERE state_hash = ?`, sha(state)).Scan(&provider, &verifier, &nonce, &exp, &invHash)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(r.Context(), `DELETE FROM dash_sso_states WHERE state_hash = ?`, sha(state))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (provider != p.ID || exp < now())) {
		return "", "", "", "", "", refuseSSO("sso.state", "state unknown, used already, expired or for another provider")
	}
	if err != nil {
		return "", "", "", "", "", fmt.Errorf("sso: state: %w", err)
	}
	o, err := d.sso.discover(r.Context(), p)
	if err != nil {
		return "", "", "", "", "", discoveryRefusal(p, err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := d.oauthConfig(r, p, o).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", "", "", "", "", refuseSSO("sso.exchange", "code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", "", "", "", "", refuseSSO("sso.exchange", "no id_token in the token response")
	}
	idt, err := o.Verifier(&oidc.Config{ClientID: p.ClientID, Now: d.sso.now}).Verify(ctx, raw)
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return "", "", "", "", "", refuseSSO("sso.expired", "id token: %w", err)
	case err != nil && strings.Contains(err.Error(), "audience"):
		return "", "", "", "", "", refuseSSO("sso.audience", "id token: %w", err)
	case err != nil && strings.Contains(err.Error(), "issuer"):
		return "", "", "", "", "", refuseSSO("sso.issuer", "id token: %w", err)
	case err != nil:
		return "", "", "", "", "", refuseSSO("sso.token", "id token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return "", "", "", "", "", refuseSSO("sso.state", "id token nonce does not match")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return "", "", "", "", "", refuseSSO("sso.token", "claims: %w", err)
	}
	email = normEmail(claimString(claims, "email"))
	if email == "" {
		email = normEmail(claimString(claims, "preferred_username"))
	}
	if v, ok := claims["email_verified"].(bool); ok && !v {
		return "", "", "", "", "", refuseSSO("sso.unverified", "email %s not verified", email)
	}
	if !strings.Contains(email, "@") {
		return "", "", "", "", "", refuseSSO("sso.no_email", "no email address in the id token")
	}
	if len(p.AllowedDomains) > 0 && !slices.Contains(p.AllowedDomains, email[strings.LastIndex(email, "@")+1:]) {
		return "", "", "", "", "", refuseSSO("sso.tenant", "email %s is not in an allowed domain", email)
	}
	if p.TenantClaim != "" && len(p.AllowedTenants) > 0 && !slices.Contains(p.AllowedTenants, claimString(claims, p.TenantClaim)) {
		return "", "", "", "", "", refuseSSO("sso.tenant", "tenant %q is not allowed", claimString(claims, p.TenantClaim))
	}
	role = p.DefaultRole
	rank := map[string]int{"": 0, RoleViewer: 1, RoleOrgAdmin: 2, RoleSectorAdmin: 3}
	for _, v := range claimStrings(claims, p.RoleClaim) {
		if m := p.Roles[v]; rank[m] > rank[role] {
			role = m
		}
	}
	// No role mapped is refused by ssoAccount, unless the account's role
	// came from an invitation.
	return email, role, p.Org, idt.Issuer + " " + idt.Subject, invHash, nil
}

func claimString(c map[string]any, k string) string {
	s, _ := c[k].(string)
	return s
}

func claimStrings(c map[string]any, k string) []string {
	if k == "" {
		return nil
	}
	switch v := c[k].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// ssoAccount makes or updates the person's account from what the provider
// says; the mapped role applies at every sign-in. A local account with the
// same address is never taken over: it keeps signing in with its password.
func (d *Dashboard) ssoAccount(ctx context.Context, p *SSOProvider, email, role, org, subject string) error {
	var pw, sub string
	var invited int
	err := d.opt.DB.QueryRowContext(ctx, `SELECT pw_hash, sso_subject, invited FROM dash_users WHERE email = ?`, email).Scan(&pw, &sub, &invited)
	switch {
	case errors.Is(err, sql.ErrNoRows) && role == "":
		return refuseSSO("sso.no_role", "%s has no group or role that maps to a dashboard role", email)
	case errors.Is(err, sql.ErrNoRows):
		_, err = d.opt.DB.ExecContext(ctx, `INSERT INTO dash_users (email, role, org, pw_hash, must_change, created_at, sso_subject) VALUES (?, ?, ?, '', 0, ?, ?)`,
			email, role, org, now(), subject)
		return err
	case err != nil:
		return fmt.Errorf("sso: account: %w", err)
	case sub == "" && pw != "":
		return refuseSSO("sso.local_account", "%s has a local account", email)
	case sub != "" && sub != subject:
		return refuseSSO("sso.other_subject", "%s is linked to another identity", email)
	case role == "" && invited != 0:
		// Invited: the invitation's role stands while no group maps one.
		return nil
	case role == "":
		return refuseSSO("sso.no_role", "%s has no group or role that maps to a dashboard role", email)
	}
	_, err = d.opt.DB.ExecContext(ctx, `UPDATE dash_users SET role = ?, org = ?, sso_subject = ? WHERE email = ?`, role, org, subject, email)
	return err
}

func (d *Dashboard) ssoFail(w http.ResponseWriter, r *http.Request, err error) {
	var re *ssoRefusal
	if !errors.As(err, &re) {
		d.fail(w, r, nil, err)
		return
	}
	d.opt.Log.Info("dashboard: sso refused", "err", err)
	p := d.newPage(r, nil, "sso.refused_title")
	p.Error = re.key
	d.render(w, r, http.StatusForbidden, "sso-refused", p)
}

// ssoAcceptInvitation finishes accepting an invitation through single
// sign-on: the provider vouched for the invited address, so the account is
// made with the invitation's role, linked to that identity, with no
// password.
func (d *Dashboard) ssoAcceptInvitation(w http.ResponseWriter, r *http.Request, p *SSOProvider, invHash, email, subject string) {
	inv, err := invitationByHash(r.Context(), d.opt.DB, invHash)
	if err != nil {
		d.ssoFail(w, r, refuseSSO("invite.used", "invitation: %w", err))
		return
	}
	if inv.Email != email {
		d.ssoFail(w, r, refuseSSO("sso.invite_email", "invited %s, signed in as %s", inv.Email, email))
		return
	}
	inv, err = d.acceptInvitationHash(r.Context(), invHash, "", subject)
	switch {
	case errors.Is(err, ErrAccountExists):
		d.ssoFail(w, r, refuseSSO("invite.account_exists", "%s", email))
		return
	case errors.Is(err, ErrInvitationUsed), errors.Is(err, ErrInvitationExpired):
		d.ssoFail(w, r, refuseSSO("invite.used", "%v", err))
		return
	case err != nil:
		d.fail(w, r, nil, err)
		return
	}
	d.audit(r.Context(), inv.Email, inv.Org, "person-joined", inv.Email, inv.Role+" (single sign-on: "+p.ID+")")
	d.startSession(w, r, email)
}

// ssoButtonsFor lists the providers an invitation for org may be accepted
// with: the hub's own and that organisation's.
func (d *Dashboard) ssoButtonsFor(org string) []ssoButton {
	if d.sso == nil || d.sso.cfg == nil {
		return nil
	}
	var out []ssoButton
	for _, p := range d.sso.cfg.Providers {
		if p.Org == "" || p.Org == org {
			out = append(out, ssoButton{p.ID, p.Name})
		}
	}
	return out
}

// ssoButton is a provider as the sign-in page lists it.
type ssoButton struct{ ID, Name string }

func (d *Dashboard) ssoButtons() []ssoButton {
	if d.sso == nil || d.sso.cfg == nil {
		return nil
	}
	var out []ssoButton
	for _, p := range d.sso.cfg.Providers {
		out = append(out, ssoButton{p.ID, p.Name})
	}
	return out
}

// discoveryRefusal names a discovery failure: most often an issuer in the
// configuration that is not the one the provider calls itself.
func discoveryRefusal(p *SSOProvider, err error) error {
	var mismatch *oidc.IssuerMismatchError
	if errors.As(err, &mismatch) {
		return refuseSSO("sso.issuer", "provider %s: %w", p.ID, err)
	}
	return refuseSSO("sso.discovery", "provider %s: %w", p.ID, err)
}
