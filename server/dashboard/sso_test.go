package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/detour-project/detour/server/store/storetest"
)

// The identity provider in these tests is zitadel/oidc's example OpenID
// Provider — a real implementation of the protocol (discovery, JWKS,
// authorization code flow with PKCE, signed ID tokens) — run in-process on
// 127.0.0.1. Its storage is wrapped only to put in the ID token the claims
// an Entra ID tenant would (email, tid, groups), and, for one user, to
// issue the token for another audience, as a misconfigured provider might.

type opUser struct {
	storage.User
	tid    string
	groups []string
}

type opUsers map[string]*opUser // by username

func (u opUsers) GetUserByID(id string) *storage.User {
	for _, x := range u {
		if x.ID == id {
			return &x.User
		}
	}
	return nil
}
func (u opUsers) GetUserByUsername(name string) *storage.User {
	if x := u[name]; x != nil {
		return &x.User
	}
	return nil
}
func (u opUsers) ExampleClientID() string { return "service" }

type opStorage struct {
	*storage.Storage
	users opUsers
}

func (s *opStorage) byID(id string) *opUser {
	for _, x := range s.users {
		if x.ID == id {
			return x
		}
	}
	return nil
}

// SetUserinfoFromScopes adds the tenant's claims to the ID token.
func (s *opStorage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	if err := s.Storage.SetUserinfoFromScopes(ctx, ui, userID, clientID, scopes); err != nil {
		return err
	}
	if u := s.byID(userID); u != nil {
		ui.Email, ui.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
		ui.AppendClaims("tid", u.tid)
		ui.AppendClaims("groups", u.groups)
	}
	return nil
}

// otherAudience makes the provider answer one user's code with an ID
// token for another application: the token endpoint's answer is signed
// again, with the provider's own key, naming "some-other-app" as audience
// and authorised party (zitadel always adds the asking client otherwise).
func otherAudience(st *opStorage, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth/token" {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
			if raw, ok := body["id_token"].(string); ok {
				parts := strings.Split(raw, ".")
				payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
				claims := map[string]any{}
				json.Unmarshal(payload, &claims)
				if claims["email"] == "odd@north.example" {
					claims["aud"], claims["azp"] = []string{"some-other-app"}, "some-other-app"
					key, err := st.SigningKey(r.Context())
					if err == nil {
						if signer, err := op.SignerFromKey(key); err == nil {
							if tok, err := crypto.Sign(claims, signer); err == nil {
								body["id_token"] = tok
							}
						}
					}
				}
			}
			b, _ := json.Marshal(body)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(b)
			return
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// startOP reserves the provider's address (its issuer) now and starts it
// once the dashboard's callback is known.
func startOP(t *testing.T) (issuer string, start func(redirects ...string)) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer = "http://" + l.Addr().String()
	mk := func(id, name, email, tid string, groups ...string) *opUser {
		return &opUser{User: storage.User{ID: id, Username: name, Password: "op-password", Email: email, EmailVerified: true,
			PreferredLanguage: language.English}, tid: tid, groups: groups}
	}
	users := opUsers{
		"it-lead":        mk("u1", "it-lead", "it-lead@north.example", "tenant-north", "detour-sector"),
		"north-it":       mk("u2", "north-it", "north-it@north.example", "tenant-north", "detour-org-admins"),
		"north-staff":    mk("u3", "north-staff", "staff@north.example", "tenant-north", "everyone"),
		"south-it":       mk("u4", "south-it", "south-it@south.example", "tenant-south", "detour-sector"),
		"wrong-audience": mk("u5", "wrong-audience", "odd@north.example", "tenant-north", "detour-sector"),
		"sector-local":   mk("u6", "sector-local", "sector@example.org", "tenant-north", "detour-sector"),
		"guest":          mk("u7", "guest", "guest@north.example", "tenant-north"),
	}
	return issuer, func(redirects ...string) {
		st := &opStorage{Storage: storage.NewStorageWithClients(users, map[string]*storage.Client{
			"detour": storage.WebClient("detour", "detour-secret", redirects...),
		}), users: users}
		srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: otherAudience(st, exampleop.SetupServer(issuer, st, slog.New(slog.DiscardHandler), false))}}
		srv.Start()
		t.Cleanup(srv.Close)
	}
}

// ssoSignIn walks a browser through the provider's login form and back,
// following every redirect, and returns the last answer.
func (b *browser) ssoSignIn(provider, user string) resp {
	b.e.t.Helper()
	start := "/sso/" + provider + "/start"
	if strings.HasPrefix(provider, "/") {
		start = provider
	}
	r := b.get(start)
	for i := 0; i < 12 && (r.code == http.StatusFound || r.code == http.StatusSeeOther); i++ {
		u, err := url.Parse(r.loc)
		if err != nil {
			b.e.t.Fatal(err)
		}
		if !u.IsAbs() {
			u = b.last.ResolveReference(u)
		}
		if u.String() == b.e.srv.URL+"/" {
			return r
		}
		r = b.getURL(u)
		if strings.HasPrefix(u.Path, "/login/username") && r.code == 200 {
			form := url.Values{"username": {user}, "password": {"op-password"}, "id": {u.Query().Get("authRequestID")}}
			req, _ := http.NewRequest("POST", u.Scheme+"://"+u.Host+"/login/username", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r = b.do(req)
			b.last = u
		}
	}
	return r
}

func (b *browser) getURL(u *url.URL) resp {
	req, _ := http.NewRequest("GET", u.String(), nil)
	b.last = u
	return b.do(req)
}

func ssoProviders(issuer string) *SSOConfig {
	return &SSOConfig{Providers: []SSOProvider{{
		ID: "entra", Name: "North Entra ID", Issuer: issuer, ClientID: "detour", ClientSecret: "detour-secret",
		AllowedDomains: []string{"north.example", "example.org"}, TenantClaim: "tid", AllowedTenants: []string{"tenant-north"},
		RoleClaim: "groups", Roles: map[string]string{"detour-sector": RoleSectorAdmin},
	}, {
		ID: "north", Name: "Northshire", Org: "north", Issuer: issuer, ClientID: "detour", ClientSecret: "detour-secret",
		AllowedDomains: []string{"north.example"}, RoleClaim: "groups", Roles: map[string]string{"detour-org-admins": RoleOrgAdmin}, DefaultRole: RoleViewer,
	}, {
		// The issuer named here is not the one the provider's discovery
		// document names (a second address for the same provider).
		ID: "misnamed", Name: "Misnamed", Issuer: strings.Replace(issuer, "127.0.0.1", "localhost", 1), ClientID: "detour", ClientSecret: "detour-secret",
		AllowedDomains: []string{"north.example"}, DefaultRole: RoleViewer,
	}}}
}

// TestSSOWithARealProvider: signing in through the provider lands on the
// dashboard with the mapped role; a wrong issuer, a wrong audience, an
// expired token, a replayed state and a user of another tenant are all
// refused with a clear message, and no account is made for them.
func TestSSOWithARealProvider(t *testing.T) {
	issuer, startProvider := startOP(t)
	var skew atomic.Int64
	e := newEnv(t, storetest.SQLite(t), func(o *Options) {
		o.SSO = ssoProviders(issuer)
		o.SSONow = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	startProvider(e.srv.URL+"/sso/entra/callback", e.srv.URL+"/sso/north/callback", e.srv.URL+"/sso/misnamed/callback")

	if r := e.browser().get("/sign-in"); !strings.Contains(r.body, `href="/sso/entra/start"`) || !strings.Contains(r.body, "Sign in with North Entra ID") {
		t.Fatal("the sign-in page does not offer single sign-on")
	}
	ok := []struct{ provider, user, email, role, org string }{
		{"entra", "it-lead", "it-lead@north.example", RoleSectorAdmin, ""},
		{"north", "north-it", "north-it@north.example", RoleOrgAdmin, "north"},
		{"north", "north-staff", "staff@north.example", RoleViewer, "north"},
	}
	for _, c := range ok {
		b := e.browser()
		r := b.ssoSignIn(c.provider, c.user)
		if r.code != http.StatusSeeOther || r.loc != "/" {
			t.Fatalf("%s via %s: %d %s %s", c.user, c.provider, r.code, r.loc, r.body)
		}
		home := b.get("/")
		if home.code != 200 || !strings.Contains(home.body, c.email+" ("+tr("en", "role."+c.role)+")") {
			t.Fatalf("%s: overview %d", c.user, home.code)
		}
		u, err := getUser(context.Background(), e.db, c.email)
		if err != nil || u.Role != c.role || u.Org != c.org {
			t.Fatalf("%s: account %+v %v", c.user, u, err)
		}
		if c.role == RoleOrgAdmin {
			if r := b.get("/orgs/south"); r.code != 403 {
				t.Fatalf("org admin by SSO reads another org: %d", r.code)
			}
		}
	}

	refused := []struct {
		name, provider, user, want string
	}{
		{"user of another tenant", "entra", "south-it", "another organisation"},
		{"no mapped group", "entra", "north-staff", "no group"},
		{"wrong audience", "entra", "wrong-audience", "not issued for this dashboard"},
		{"wrong issuer", "misnamed", "north-staff", "does not match"},
		{"local account not taken over", "entra", "sector-local", "local account"},
	}
	for _, c := range refused {
		r := e.browser().ssoSignIn(c.provider, c.user)
		if r.code != http.StatusForbidden || !strings.Contains(r.body, c.want) {
			t.Errorf("%s: %d, want 403 saying %q:\n%s", c.name, r.code, c.want, errorText(r.body))
		}
	}
	for _, email := range []string{"south-it@south.example", "odd@north.example"} {
		if _, err := getUser(context.Background(), e.db, email); err == nil {
			t.Errorf("a refused sign-in made an account for %s", email)
		}
	}

	// An invitation accepted through the provider: the invited address
	// only, the invited role (no group maps one for this person), no
	// password; later sign-ins keep that role.
	sector := e.signIn("sector@example.org")
	mkInvite := func(email string) string {
		r := sector.post("/people", url.Values{"email": {email}, "role": {RoleViewer}, "org": {"north"}})
		m := inviteLinkRE.FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("invite %s: %d", email, r.code)
		}
		return m[1]
	}
	other := mkInvite("someone-else@north.example")
	if p := e.browser().get(other); !strings.Contains(p.body, other+"/sso/entra") || !strings.Contains(p.body, "Accept with North Entra ID") {
		t.Fatal("the invitation page offers no single sign-on")
	}
	if r := e.browser().ssoSignIn(other+"/sso/entra", "guest"); r.code != http.StatusForbidden || !strings.Contains(r.body, "different email address") {
		t.Fatalf("invitation accepted as another address: %d %s", r.code, errorText(r.body))
	}
	if p := e.browser().get(other); p.code != 200 {
		t.Fatalf("a refused acceptance used the invitation up: %d", p.code)
	}
	mine := mkInvite("guest@north.example")
	gb := e.browser()
	if r := gb.ssoSignIn(mine+"/sso/entra", "guest"); r.code != http.StatusSeeOther || r.loc != "/" {
		t.Fatalf("invitation by SSO: %d %s", r.code, errorText(r.body))
	}
	if u, _ := getUser(context.Background(), e.db, "guest@north.example"); u == nil || u.Role != RoleViewer || u.Org != "north" || u.Local {
		t.Fatalf("account from an SSO invitation: %+v", u)
	}
	if r := e.browser().ssoSignIn("entra", "guest"); r.code != http.StatusSeeOther {
		t.Fatalf("invited person signs in again: %d %s", r.code, errorText(r.body))
	}
	if r := e.browser().ssoSignIn(mine+"/sso/entra", "guest"); r.code == http.StatusSeeOther {
		t.Fatal("an invitation was accepted twice")
	}

	// Expired: the provider's tokens live an hour; the dashboard's clock
	// is moved past that between the provider's answer and the check.
	skew.Store(int64(2 * time.Hour))
	if r := e.browser().ssoSignIn("entra", "it-lead"); r.code != http.StatusForbidden || !strings.Contains(r.body, "expired") {
		t.Errorf("expired token: %d %s", r.code, errorText(r.body))
	}
	skew.Store(0)

	// Replayed state: the provider's redirect back, sent a second time.
	b := e.browser()
	r := b.get("/sso/entra/start")
	for i := 0; i < 8 && r.code/100 == 3; i++ {
		u, _ := url.Parse(r.loc)
		if !u.IsAbs() {
			u = b.last.ResolveReference(u)
		}
		if strings.HasPrefix(u.String(), e.srv.URL+"/sso/entra/callback") {
			first := b.getURL(u)
			if first.code != http.StatusSeeOther {
				t.Fatalf("first callback: %d", first.code)
			}
			again := b.getURL(u)
			if again.code != http.StatusForbidden || !strings.Contains(again.body, "already been used") {
				t.Fatalf("replayed state: %d %s", again.code, errorText(again.body))
			}
			// Another browser with the same callback URL fares no better.
			if other := e.browser().getURL(u); other.code != http.StatusForbidden {
				t.Fatalf("state from another browser: %d", other.code)
			}
			return
		}
		r = b.getURL(u)
		if strings.HasPrefix(u.Path, "/login/username") {
			form := url.Values{"username": {"it-lead"}, "password": {"op-password"}, "id": {u.Query().Get("authRequestID")}}
			req, _ := http.NewRequest("POST", u.Scheme+"://"+u.Host+"/login/username", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r = b.do(req)
		}
	}
	t.Fatal("never reached the callback")
}

func errorText(body string) string {
	if i := strings.Index(body, "govuk-error-summary__list"); i >= 0 {
		body = body[i:]
		if j := strings.Index(body, "</ul>"); j >= 0 {
			return body[:j]
		}
	}
	if len(body) > 300 {
		return body[:300]
	}
	return body
}

func TestSSOConfigChecks(t *testing.T) {
	for _, c := range []struct {
		name string
		p    SSOProvider
		want string
	}{
		{"no rule on who", SSOProvider{ID: "a", Issuer: "https://idp.example", ClientID: "x"}, "allowed_domains"},
		{"plain http issuer", SSOProvider{ID: "a", Issuer: "http://idp.example", ClientID: "x", AllowedDomains: []string{"x"}}, "https"},
		{"org provider grants sector-admin", SSOProvider{ID: "a", Org: "north", Issuer: "https://idp.example", ClientID: "x", AllowedDomains: []string{"x"}, DefaultRole: RoleSectorAdmin}, "cannot grant"},
		{"unknown role", SSOProvider{ID: "a", Issuer: "https://idp.example", ClientID: "x", AllowedDomains: []string{"x"}, Roles: map[string]string{"g": "root"}}, "role"},
		{"bad id", SSOProvider{ID: "A/B", Issuer: "https://idp.example", ClientID: "x", AllowedDomains: []string{"x"}}, "id"},
	} {
		err := (&SSOConfig{Providers: []SSOProvider{c.p}}).check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		}
	}
}
