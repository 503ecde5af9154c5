package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/detour-project/detour/server/store"
)

// Who may manage whom. A sector admin invites organisation admins and
// viewers, changes roles and removes anyone but themself; an organisation
// admin invites and removes its own organisation's viewers. Nobody changes
// or removes their own account here (a hub must not lock itself out by a
// click; `admin user` on the hub's shell remains).

// mayInvite says whether u may invite someone as role in org.
func mayInvite(u *User, role, org string) bool {
	switch u.Role {
	case RoleSectorAdmin:
		return role == RoleOrgAdmin || role == RoleViewer
	case RoleOrgAdmin:
		return role == RoleViewer && org == u.Org && org != ""
	}
	return false
}

// mayManage says whether u may remove (and see the detail of) target.
func mayManage(u, target *User) bool {
	if u.Email == target.Email {
		return false
	}
	switch u.Role {
	case RoleSectorAdmin:
		return true
	case RoleOrgAdmin:
		return target.Role == RoleViewer && target.Org == u.Org && u.Org != ""
	}
	return false
}

// person is a row of the people page.
type person struct {
	User
	CreatedAt, LastSignIn string
}

func (d *Dashboard) people(ctx context.Context) ([]person, error) {
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT email, role, org, must_change, created_at, last_sign_in FROM dash_users ORDER BY email`)
	if err != nil {
		return nil, fmt.Errorf("dashboard: people: %w", err)
	}
	defer rows.Close()
	var out []person
	for rows.Next() {
		var p person
		var must int
		if err := rows.Scan(&p.Email, &p.Role, &p.Org, &must, &p.CreatedAt, &p.LastSignIn); err != nil {
			return nil, fmt.Errorf("dashboard: people: %w", err)
		}
		p.MustChange = must != 0
		out = append(out, p)
	}
	return out, rows.Err()
}

func (d *Dashboard) pendingInvitations(ctx context.Context) ([]Invitation, error) {
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT `+invitationCols+` FROM dash_invitations WHERE accepted_at = '' AND revoked_at = '' AND expires_at > ? ORDER BY created_at`, now())
	if err != nil {
		return nil, fmt.Errorf("dashboard: invitations: %w", err)
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		i, err := scanInvitation(rows)
		if err != nil {
			return nil, fmt.Errorf("dashboard: invitations: %w", err)
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

type peopleForm struct {
	Roles []option
	Orgs  []option
	Email string
	Role  string
	Org   string
	// Link is set once, on the answer to the POST that made the invitation.
	Link    string
	LinkFor string
	Expires string
	Pending []pendingRow
	Sector  bool
	MyOrg   string
	Notice  string // translated
}

type pendingRow struct {
	ID, Email, Role, Org, Expires string
}

func (d *Dashboard) peoplePage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showPeople(w, r, s, http.StatusOK, "", &peopleForm{Role: RoleViewer})
}

func (d *Dashboard) showPeople(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, f *peopleForm) {
	ix := d.index()
	p := d.newPage(r, s, "people.title")
	p.Error, p.Notice = errKey, f.Notice
	all, err := d.people(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	t := p.newTable("people", "people.title", "email", "role", "organisation", "last_sign_in", "created")
	for _, pe := range all {
		if !(s.user.Role == RoleSectorAdmin || pe.Org == s.user.Org) {
			continue
		}
		last := pe.LastSignIn
		if last == "" {
			last = p.t("people.never")
		}
		name := p.text(pe.Email)
		if mayManage(s.user, &pe.User) {
			name = p.link(pe.Email, "/people/"+url.PathEscape(pe.Email))
		}
		org := ""
		if pe.Org != "" {
			org = ix.orgName(pe.Org)
		}
		t.Rows = append(t.Rows, []cell{name, p.text(p.t("role." + pe.Role)), p.text(org), p.text(last), p.text(pe.CreatedAt)})
	}
	p.add(&section{ID: "people", Heading: p.t("people.list"), Intro: p.t("people.intro"), Table: t})
	pending, err := d.pendingInvitations(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	for _, i := range pending {
		if !(s.user.Role == RoleSectorAdmin || (i.Org == s.user.Org && i.Role == RoleViewer)) {
			continue
		}
		org := ""
		if i.Org != "" {
			org = ix.orgName(i.Org)
		}
		f.Pending = append(f.Pending, pendingRow{ID: i.ID, Email: i.Email, Role: p.t("role." + i.Role), Org: org, Expires: i.ExpiresAt})
	}
	f.Sector, f.MyOrg = s.user.Role == RoleSectorAdmin, ix.orgName(s.user.Org)
	f.Roles = nil
	for _, role := range []string{RoleViewer, RoleOrgAdmin} {
		if s.user.Role == RoleSectorAdmin || role == RoleViewer {
			f.Roles = append(f.Roles, option{role, p.t("role." + role)})
		}
	}
	f.Orgs = nil
	if s.user.Role == RoleSectorAdmin {
		f.Orgs = append([]option{{"", p.t("people.no_org")}}, ix.orgOptions()...)
	}
	p.Form = f
	d.render(w, r, code, "people", p)
}

// invite makes an invitation and shows its link once.
func (d *Dashboard) invite(w http.ResponseWriter, r *http.Request, s *session) {
	f := &peopleForm{Email: normEmail(r.PostFormValue("email")), Role: r.PostFormValue("role"), Org: r.PostFormValue("org")}
	if s.user.Role == RoleOrgAdmin {
		f.Org = s.user.Org // an org admin's invitations are for its own organisation
	}
	if !mayInvite(s.user, f.Role, f.Org) {
		d.status(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	if f.Org != "" && d.index().orgs[f.Org] == nil {
		d.showPeople(w, r, s, http.StatusBadRequest, "people.unknown_org", f)
		return
	}
	if f.Role == RoleOrgAdmin && f.Org == "" {
		d.showPeople(w, r, s, http.StatusBadRequest, "people.org_needed", f)
		return
	}
	inv, tok, err := CreateInvitation(r.Context(), d.opt.DB, Invitation{Email: f.Email, Role: f.Role, Org: f.Org, CreatedBy: s.user.Email}, 0)
	switch {
	case errors.Is(err, ErrAccountExists):
		d.showPeople(w, r, s, http.StatusConflict, "people.exists", f)
		return
	case err != nil && strings.Contains(err.Error(), "not an email address"):
		d.showPeople(w, r, s, http.StatusBadRequest, "people.bad_email", f)
		return
	case err != nil:
		d.fail(w, r, s, err)
		return
	}
	d.audit(r.Context(), s.user.Email, inv.Org, "person-invited", inv.Email, inv.Role)
	f.Link, f.LinkFor, f.Expires = d.baseURL(r)+"/invite/"+tok, inv.Email, inv.ExpiresAt
	f.Email = ""
	d.showPeople(w, r, s, http.StatusOK, "", f)
}

// baseURL is how the browser reached the dashboard, for links it shows.
func (d *Dashboard) baseURL(r *http.Request) string {
	scheme := "http"
	if d.secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// personTarget loads the person named in the path if s may manage them.
func (d *Dashboard) personTarget(w http.ResponseWriter, r *http.Request, s *session) (*User, bool) {
	u, err := getUser(r.Context(), d.opt.DB, normEmail(r.PathValue("email")))
	if errors.Is(err, errNoUser) || (err == nil && !mayManage(s.user, u)) {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return nil, false
	}
	if err != nil {
		d.fail(w, r, s, err)
		return nil, false
	}
	return u, true
}

type personForm struct {
	Target  *User
	Sector  bool
	Roles   []option
	Orgs    []option
	Escaped string
}

func (d *Dashboard) personPage(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := d.personTarget(w, r, s)
	if !ok {
		return
	}
	d.showPerson(w, r, s, u, http.StatusOK, "", "")
}

func (d *Dashboard) showPerson(w http.ResponseWriter, r *http.Request, s *session, u *User, code int, errKey, notice string) {
	ix := d.index()
	p := d.newPage(r, s, "person.title")
	p.TitleArg, p.Error, p.Notice = u.Email, errKey, notice
	var last, created string
	d.opt.DB.QueryRowContext(r.Context(), `SELECT last_sign_in, created_at FROM dash_users WHERE email = ?`, u.Email).Scan(&last, &created)
	if last == "" {
		last = p.t("people.never")
	}
	org := ""
	if u.Org != "" {
		org = ix.orgName(u.Org)
	}
	t := p.newTable("person", "person.title", "field", "value")
	t.Rows = [][]cell{
		{p.text(p.t("col.email")), p.text(u.Email)},
		{p.text(p.t("col.role")), p.text(p.t("role." + u.Role))},
		{p.text(p.t("col.organisation")), p.text(org)},
		{p.text(p.t("col.last_sign_in")), p.text(last)},
		{p.text(p.t("col.created")), p.text(created)},
	}
	p.add(&section{ID: "person", Heading: p.t("person.details"), Table: t})
	f := personForm{Target: u, Sector: s.user.Role == RoleSectorAdmin, Escaped: url.PathEscape(u.Email)}
	for _, role := range []string{RoleViewer, RoleOrgAdmin, RoleSectorAdmin} {
		f.Roles = append(f.Roles, option{role, p.t("role." + role)})
	}
	f.Orgs = append(f.Orgs, option{"", p.t("people.no_org")})
	for _, o := range ix.doc.Organisations {
		f.Orgs = append(f.Orgs, option{o.ID, o.Name})
	}
	p.Form = f
	d.render(w, r, code, "person", p)
}

// changeRole sets a person's role and organisation (sector admins only)
// and ends their sessions, so the new role applies at once.
func (d *Dashboard) changeRole(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := d.personTarget(w, r, s)
	if !ok {
		return
	}
	if s.user.Role != RoleSectorAdmin {
		d.status(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	role, org := r.PostFormValue("role"), r.PostFormValue("org")
	if role == RoleSectorAdmin {
		org = ""
	}
	if err := checkAccount(u.Email, role, org); err != nil {
		d.showPerson(w, r, s, u, http.StatusBadRequest, "people.org_needed", "")
		return
	}
	if org != "" && d.index().orgs[org] == nil {
		d.showPerson(w, r, s, u, http.StatusBadRequest, "people.unknown_org", "")
		return
	}
	err := d.opt.DB.InTx(r.Context(), func(tx *store.Tx) error {
		if _, err := tx.ExecContext(r.Context(), `UPDATE dash_users SET role = ?, org = ? WHERE email = ?`, role, org, u.Email); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), `DELETE FROM dash_sessions WHERE email = ?`, u.Email)
		return err
	})
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("dashboard: change role: %w", err))
		return
	}
	d.audit(r.Context(), s.user.Email, org, "person-role-changed", u.Email, u.Role+"/"+u.Org+" → "+role+"/"+org)
	u.Role, u.Org = role, org
	d.showPerson(w, r, s, u, http.StatusOK, "", tr(langOf(r), "person.role_changed"))
}

// removePerson deletes an account with its sessions and API tokens.
func (d *Dashboard) removePerson(w http.ResponseWriter, r *http.Request, s *session) {
	u, ok := d.personTarget(w, r, s)
	if !ok {
		return
	}
	err := d.opt.DB.InTx(r.Context(), func(tx *store.Tx) error {
		for _, q := range []string{`DELETE FROM dash_users WHERE email = ?`, `DELETE FROM dash_sessions WHERE email = ?`, `DELETE FROM dash_api_tokens WHERE email = ?`} {
			if _, err := tx.ExecContext(r.Context(), q, u.Email); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("dashboard: remove person: %w", err))
		return
	}
	d.audit(r.Context(), s.user.Email, u.Org, "person-removed", u.Email, u.Role)
	d.showPeople(w, r, s, http.StatusOK, "", &peopleForm{Role: RoleViewer, Notice: tr(langOf(r), "people.removed", u.Email)})
}

// revokeInvitation withdraws a pending invitation.
func (d *Dashboard) revokeInvitation(w http.ResponseWriter, r *http.Request, s *session) {
	i, err := scanInvitation(d.opt.DB.QueryRowContext(r.Context(), `SELECT `+invitationCols+` FROM dash_invitations WHERE id = ?`, r.PathValue("id")))
	if err != nil || !(s.user.Role == RoleSectorAdmin || (s.user.Role == RoleOrgAdmin && i.Org == s.user.Org && i.Role == RoleViewer)) {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	if _, err := d.opt.DB.ExecContext(r.Context(), `UPDATE dash_invitations SET revoked_at = ? WHERE id = ? AND revoked_at = ''`, now(), i.ID); err != nil {
		d.fail(w, r, s, err)
		return
	}
	d.audit(r.Context(), s.user.Email, i.Org, "person-invitation-withdrawn", i.Email, i.Role)
	http.Redirect(w, r, "/people", http.StatusSeeOther)
}
