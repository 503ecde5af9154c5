package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/detour-project/detour/server/store"
)

// API tokens for scripts and reporting tools: made (shown once) and revoked
// by an admin, each scoped to a role and an organisation, sent as
// `Authorization: Bearer dtr_…` to GET /api/v1/aggregates and to any page's
// export (?export=TABLE&format=csv|json). A token reads only: it is refused
// on every other page and on every POST. Only its hash is stored. A token
// goes with the account that made it (removing that person revokes it).

// APIToken is a token as the tokens page lists it (never the token).
type APIToken struct {
	ID, Label, Role, Org, CreatedBy, CreatedAt, LastUsed, RevokedAt string
}

// CreateScopedToken makes a token acting as role in org (org "" for a
// sector-wide viewer or a sector admin), made by creator. The role rules
// (who may make which) are the caller's.
func CreateScopedToken(ctx context.Context, db *store.DB, creator, label, role, org string) (APIToken, string, error) {
	if err := checkAccount(creator, role, org); err != nil {
		return APIToken{}, "", err
	}
	if role == RoleSectorAdmin {
		org = ""
	}
	label = strings.TrimSpace(label)
	if label == "" || len(label) > 100 {
		return APIToken{}, "", errors.New("dashboard: a token needs a label of at most 100 characters")
	}
	tok := "dtr_" + randomToken(32)
	t := APIToken{ID: newID(), Label: label, Role: role, Org: org, CreatedBy: creator, CreatedAt: now()}
	_, err := db.ExecContext(ctx, `INSERT INTO dash_api_tokens (token_hash, email, label, created_at, id, role, org, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		sha(tok), creator, label, t.CreatedAt, t.ID, role, org, creator)
	if err != nil {
		return APIToken{}, "", fmt.Errorf("dashboard: api token: %w", err)
	}
	return t, tok, nil
}

// tokenUser is the account a bearer token acts as: its scope for a scoped
// token, its account's role for one made by `admin api-token create`.
// A revoked token, or one whose maker's account is gone, is refused.
func tokenUser(ctx context.Context, db *store.DB, tok string) (*User, error) {
	var email, role, org, revoked string
	err := db.QueryRowContext(ctx, `SELECT email, role, org, revoked_at FROM dash_api_tokens WHERE token_hash = ?`, sha(tok)).Scan(&email, &role, &org, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked != "") {
		return nil, errNoUser
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: api token: %w", err)
	}
	u, err := getUser(ctx, db, email)
	if err != nil {
		return nil, err
	}
	db.ExecContext(ctx, `UPDATE dash_api_tokens SET last_used = ? WHERE token_hash = ?`, now(), sha(tok))
	if role == "" { // made by `admin api-token create`: acts as its account
		return u, nil
	}
	return &User{Email: "token:" + email, Role: role, Org: org}, nil
}

// bearerExport signs a GET export in with an API token: a session for
// this request only, with no CSRF token (it cannot POST).
func (d *Dashboard) bearerExport(r *http.Request) (*session, bool, error) {
	a := r.Header.Get("Authorization")
	if a == "" {
		return nil, false, nil
	}
	tok, ok := strings.CutPrefix(a, "Bearer ")
	if !ok || r.Method != http.MethodGet || r.URL.Query().Get("export") == "" {
		return nil, true, errNoUser
	}
	u, err := tokenUser(r.Context(), d.opt.DB, strings.TrimSpace(tok))
	if err != nil {
		return nil, true, err
	}
	return &session{user: u}, true, nil
}

// mayMakeToken says whether u may make a token acting as role in org.
func mayMakeToken(u *User, role, org string) bool {
	switch u.Role {
	case RoleSectorAdmin:
		return true
	case RoleOrgAdmin:
		return (role == RoleOrgAdmin || role == RoleViewer) && org == u.Org && org != ""
	}
	return false
}

func (d *Dashboard) tokens(ctx context.Context, u *User) ([]APIToken, error) {
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT id, label, role, org, created_by, created_at, last_used, revoked_at FROM dash_api_tokens WHERE id <> '' ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("dashboard: api tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		if err := rows.Scan(&t.ID, &t.Label, &t.Role, &t.Org, &t.CreatedBy, &t.CreatedAt, &t.LastUsed, &t.RevokedAt); err != nil {
			return nil, fmt.Errorf("dashboard: api tokens: %w", err)
		}
		if u.Role == RoleSectorAdmin || (t.Org == u.Org && u.Org != "") {
			out = append(out, t)
		}
	}
	return out, rows.Err()
}

type tokensForm struct {
	Tokens           []tokenRow
	Roles, Orgs      []option
	Label, Role, Org string
	Created          string // the token, on the answer that made it only
	Sector           bool
	MyOrg            string
	Notice           string
}

type tokenRow struct {
	APIToken
	RoleName, OrgName string
	Active            bool
}

func (d *Dashboard) tokensPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showTokens(w, r, s, http.StatusOK, "", &tokensForm{Role: RoleViewer})
}

func (d *Dashboard) showTokens(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, f *tokensForm) {
	ix := d.index()
	p := d.newPage(r, s, "tokens.title")
	p.Error, p.Notice = errKey, f.Notice
	list, err := d.tokens(r.Context(), s.user)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	for _, t := range list {
		row := tokenRow{APIToken: t, RoleName: p.t("role." + t.Role), Active: t.RevokedAt == ""}
		if t.Org != "" {
			row.OrgName = ix.orgName(t.Org)
		}
		if row.LastUsed == "" {
			row.LastUsed = p.t("people.never")
		}
		f.Tokens = append(f.Tokens, row)
	}
	f.Sector, f.MyOrg = s.user.Role == RoleSectorAdmin, ix.orgName(s.user.Org)
	f.Roles = nil
	for _, role := range []string{RoleViewer, RoleOrgAdmin, RoleSectorAdmin} {
		if s.user.Role == RoleSectorAdmin || role != RoleSectorAdmin {
			f.Roles = append(f.Roles, option{role, p.t("role." + role)})
		}
	}
	f.Orgs = nil
	if s.user.Role == RoleSectorAdmin {
		f.Orgs = append([]option{{"", p.t("people.no_org")}}, ix.orgOptions()...)
	}
	p.Form = f
	d.render(w, r, code, "tokens", p)
}

func (d *Dashboard) createToken(w http.ResponseWriter, r *http.Request, s *session) {
	f := &tokensForm{Label: r.PostFormValue("label"), Role: r.PostFormValue("role"), Org: r.PostFormValue("org")}
	if s.user.Role == RoleOrgAdmin {
		f.Org = s.user.Org
	}
	if !mayMakeToken(s.user, f.Role, f.Org) {
		d.status(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	if f.Org != "" && d.index().orgs[f.Org] == nil {
		d.showTokens(w, r, s, http.StatusBadRequest, "people.unknown_org", f)
		return
	}
	if f.Role == RoleOrgAdmin && f.Org == "" {
		d.showTokens(w, r, s, http.StatusBadRequest, "people.org_needed", f)
		return
	}
	t, tok, err := CreateScopedToken(r.Context(), d.opt.DB, s.user.Email, f.Label, f.Role, f.Org)
	if err != nil && strings.Contains(err.Error(), "label") {
		d.showTokens(w, r, s, http.StatusBadRequest, "tokens.bad_label", f)
		return
	}
	if err != nil {
		d.showTokens(w, r, s, http.StatusBadRequest, "people.org_needed", f)
		return
	}
	d.audit(r.Context(), s.user.Email, t.Org, "token-created", t.Label, t.Role)
	d.showTokens(w, r, s, http.StatusOK, "", &tokensForm{Role: RoleViewer, Created: tok})
}

func (d *Dashboard) revokeToken(w http.ResponseWriter, r *http.Request, s *session) {
	var t APIToken
	err := d.opt.DB.QueryRowContext(r.Context(), `SELECT id, label, role, org FROM dash_api_tokens WHERE id = ? AND id <> ''`, r.PathValue("id")).Scan(&t.ID, &t.Label, &t.Role, &t.Org)
	if err != nil || !(s.user.Role == RoleSectorAdmin || (s.user.Role == RoleOrgAdmin && t.Org == s.user.Org)) {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	if _, err := d.opt.DB.ExecContext(r.Context(), `UPDATE dash_api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = ''`, now(), t.ID); err != nil {
		d.fail(w, r, s, err)
		return
	}
	d.audit(r.Context(), s.user.Email, t.Org, "token-revoked", t.Label, t.Role)
	d.showTokens(w, r, s, http.StatusOK, "", &tokensForm{Role: RoleViewer, Notice: tr(langOf(r), "tokens.revoked", t.Label)})
}
