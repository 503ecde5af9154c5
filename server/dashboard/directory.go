package dashboard

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/detour-project/detour/server/store"
)

// The filtering owners' directory: who owns filtering at each member
// organisation, kept by those people themselves. A sector admin invites a
// person to be an organisation's filtering owner (an invitation of kind
// KindOwner: a one-time, expiring link shown once); accepting it makes them
// that organisation's admin and starts their entry. Each owner keeps their
// own entry (name, role, team, how to reach them) current and confirms it;
// the directory shows when each entry was last confirmed, so a stale one is
// visible. Only filtering owners (organisation and sector admins) read it.

// KindOwner is the invitation kind for a filtering owner.
const KindOwner = "filtering-owner"

var directoryMigrations = []store.Step{{Version: 1, SQL: `
CREATE TABLE directory_entries (
	email TEXT PRIMARY KEY,
	org TEXT NOT NULL,
	name TEXT NOT NULL,
	role TEXT NOT NULL,
	team TEXT NOT NULL,
	contact TEXT NOT NULL,
	confirmed_at TEXT NOT NULL
);`}}

// staleAfter is when an entry's confirmation is flagged as old.
const staleAfter = 180 * 24 * time.Hour

// Field limits, in bytes.
const maxEntryField = 200

type entry struct {
	Email, Org, Name, Role, Team, Contact, ConfirmedAt string
}

type ownerData struct {
	Name string `json:"name"`
}

// ownerAccepted starts the new owner's entry in the accepting transaction.
func (d *Dashboard) ownerAccepted(ctx context.Context, tx *store.Tx, inv Invitation) error {
	var data ownerData
	if inv.Data != "" {
		if err := json.Unmarshal([]byte(inv.Data), &data); err != nil {
			return fmt.Errorf("dashboard: owner invitation data: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO directory_entries (email, org, name, role, team, contact, confirmed_at) VALUES (?, ?, ?, '', '', ?, ?)
		ON CONFLICT (email) DO UPDATE SET org = excluded.org, confirmed_at = excluded.confirmed_at`, inv.Email, inv.Org, data.Name, inv.Email, now())
	if err != nil {
		return fmt.Errorf("dashboard: directory entry: %w", err)
	}
	return nil
}

func (d *Dashboard) entries(ctx context.Context) ([]entry, error) {
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT email, org, name, role, team, contact, confirmed_at FROM directory_entries`)
	if err != nil {
		return nil, fmt.Errorf("dashboard: directory: %w", err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.Email, &e.Org, &e.Name, &e.Role, &e.Team, &e.Contact, &e.ConfirmedAt); err != nil {
			return nil, fmt.Errorf("dashboard: directory: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (d *Dashboard) ownEntry(ctx context.Context, u *User) (entry, bool, error) {
	e := entry{Email: u.Email, Org: u.Org}
	err := d.opt.DB.QueryRowContext(ctx, `SELECT email, org, name, role, team, contact, confirmed_at FROM directory_entries WHERE email = ?`, u.Email).
		Scan(&e.Email, &e.Org, &e.Name, &e.Role, &e.Team, &e.Contact, &e.ConfirmedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	return e, err == nil, err
}

type directoryForm struct {
	Sector  bool
	Orgs    []option
	Email   string
	Org     string
	Name    string
	Link    string
	LinkFor string
	Expires string
	Entry   entry
	HasOwn  bool
}

func (d *Dashboard) directoryPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showDirectory(w, r, s, http.StatusOK, "", &directoryForm{})
}

func (d *Dashboard) showDirectory(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, f *directoryForm) {
	ix := d.index()
	p := d.newPage(r, s, "directory.title")
	p.Error = errKey
	if r.URL.Query().Get("saved") == "1" {
		p.Notice = p.t("directory.saved")
	}
	list, err := d.entries(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := ix.orgName(list[i].Org), ix.orgName(list[j].Org)
		if a != b {
			return a < b
		}
		return list[i].Name < list[j].Name
	})
	t := p.newTable("directory", "directory.title", "organisation", "name", "role", "team", "contact", "confirmed")
	for _, e := range list {
		org := p.t("forum.sector")
		if e.Org != "" {
			org = ix.orgName(e.Org)
		}
		confirmed := cell{Text: e.ConfirmedAt, Lang: p.Lang}
		if at, err := time.Parse(time.RFC3339, e.ConfirmedAt); err == nil {
			confirmed.Text = at.Format("2006-01-02")
			if d.opt.Now().Sub(at) > staleAfter {
				confirmed = p.tag("expired", "directory.stale")
				confirmed.Text = p.t("directory.stale", at.Format("2006-01-02"))
			}
		}
		t.Rows = append(t.Rows, []cell{p.text(org), p.text(e.Name), p.text(e.Role), p.text(e.Team), p.text(e.Contact), confirmed})
	}
	t.Empty = p.t("directory.none")
	p.add(&section{ID: "directory", Heading: p.t("directory.list"), Intro: p.t("directory.intro"), Table: t})
	own, has, err := d.ownEntry(r.Context(), s.user)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	f.Entry, f.HasOwn = own, has
	f.Sector = s.user.Role == RoleSectorAdmin
	f.Orgs = nil
	if f.Sector {
		f.Orgs = ix.orgOptions()
	}
	p.Form = f
	d.render(w, r, code, "directory", p)
}

// saveEntry saves the signed-in owner's own entry and confirms it: nobody
// edits another person's entry.
func (d *Dashboard) saveEntry(w http.ResponseWriter, r *http.Request, s *session) {
	e := entry{Email: s.user.Email, Org: s.user.Org, Name: strings.TrimSpace(r.PostFormValue("name")), Role: strings.TrimSpace(r.PostFormValue("role")),
		Team: strings.TrimSpace(r.PostFormValue("team")), Contact: strings.TrimSpace(r.PostFormValue("contact")), ConfirmedAt: d.opt.Now().UTC().Format(time.RFC3339)}
	if e.Name == "" || e.Contact == "" {
		d.showDirectory(w, r, s, http.StatusBadRequest, "directory.required", &directoryForm{})
		return
	}
	for _, v := range []string{e.Name, e.Role, e.Team, e.Contact} {
		if len(v) > maxEntryField {
			d.showDirectory(w, r, s, http.StatusBadRequest, "directory.too_long", &directoryForm{})
			return
		}
	}
	_, err := d.opt.DB.ExecContext(r.Context(), `INSERT INTO directory_entries (email, org, name, role, team, contact, confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (email) DO UPDATE SET org = excluded.org, name = excluded.name, role = excluded.role, team = excluded.team, contact = excluded.contact, confirmed_at = excluded.confirmed_at`,
		e.Email, e.Org, e.Name, e.Role, e.Team, e.Contact, e.ConfirmedAt)
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("dashboard: directory entry: %w", err))
		return
	}
	d.audit(r.Context(), s.user.Email, s.user.Org, "directory-confirmed", s.user.Email, "")
	http.Redirect(w, r, "/directory?saved=1", http.StatusSeeOther)
}

// inviteOwner: a sector admin invites a person to be an organisation's
// filtering owner; the link is shown once.
func (d *Dashboard) inviteOwner(w http.ResponseWriter, r *http.Request, s *session) {
	f := &directoryForm{Email: normEmail(r.PostFormValue("email")), Org: r.PostFormValue("org"), Name: strings.TrimSpace(r.PostFormValue("name"))}
	if d.index().orgs[f.Org] == nil {
		d.showDirectory(w, r, s, http.StatusBadRequest, "people.unknown_org", f)
		return
	}
	if len(f.Name) > maxEntryField {
		d.showDirectory(w, r, s, http.StatusBadRequest, "directory.too_long", f)
		return
	}
	data, _ := json.Marshal(ownerData{Name: f.Name})
	inv, tok, err := CreateInvitation(r.Context(), d.opt.DB, Invitation{Kind: KindOwner, Email: f.Email, Role: RoleOrgAdmin, Org: f.Org, Data: string(data), CreatedBy: s.user.Email}, 0)
	switch {
	case errors.Is(err, ErrAccountExists):
		d.showDirectory(w, r, s, http.StatusConflict, "people.exists", f)
		return
	case err != nil && strings.Contains(err.Error(), "not an email address"):
		d.showDirectory(w, r, s, http.StatusBadRequest, "people.bad_email", f)
		return
	case err != nil:
		d.fail(w, r, s, err)
		return
	}
	d.audit(r.Context(), s.user.Email, inv.Org, "person-invited", inv.Email, KindOwner)
	f.Link, f.LinkFor, f.Expires = d.baseURL(r)+"/invite/"+tok, inv.Email, inv.ExpiresAt
	f.Email, f.Name = "", ""
	d.showDirectory(w, r, s, http.StatusOK, "", f)
}
