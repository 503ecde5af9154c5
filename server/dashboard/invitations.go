package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/detour-project/detour/server/store"
)

// Invitation is a one-time invitation to the dashboard: a link, shown once
// to whoever made it, that expires. Accepting it makes an account with the
// invitation's role and organisation, then runs the hooks registered for
// its kind in the same transaction, so another domain (e.g. a directory of
// the people who own filtering) can build on invitations without its own
// links, expiry or accounts.
type Invitation struct {
	ID        string
	Kind      string // KindAccount, or another domain's kind (see OnInvitationAccepted)
	Email     string
	Role      string
	Org       string
	Data      string // the kind's own data, kept as given (e.g. JSON)
	CreatedBy string
	CreatedAt string
	ExpiresAt string
	// AcceptedAt and RevokedAt are set once; an invitation with either is
	// used up.
	AcceptedAt string
	RevokedAt  string
}

// KindAccount is a plain invitation to a dashboard account.
const KindAccount = "account"

// InvitationTTL is how long an invitation link works unless told otherwise.
const InvitationTTL = 7 * 24 * time.Hour

// AcceptHook runs inside the transaction that accepts inv, after its
// account exists; an error undoes the acceptance and is logged.
type AcceptHook func(ctx context.Context, tx *store.Tx, inv Invitation) error

// hooks are the registered AcceptHooks by kind.
type hooks struct {
	mu sync.Mutex
	m  map[string][]AcceptHook
}

func (h *hooks) add(kind string, f AcceptHook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string][]AcceptHook{}
	}
	h.m[kind] = append(h.m[kind], f)
}

func (h *hooks) of(kind string) []AcceptHook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]AcceptHook(nil), h.m[kind]...)
}

// OnInvitationAccepted registers f to run when an invitation of kind is
// accepted (see AcceptHook).
func (d *Dashboard) OnInvitationAccepted(kind string, f AcceptHook) { d.hooks.add(kind, f) }

// Invitation errors, each with the message key a page shows.
var (
	ErrInvitationUsed    = errors.New("dashboard: this invitation has already been used or withdrawn")
	ErrInvitationExpired = errors.New("dashboard: this invitation has expired")
	ErrAccountExists     = errors.New("dashboard: an account with this email address already exists")
)

// CreateInvitation stores an invitation and returns its token, which only
// the link carries: the database keeps its hash. ttl <= 0 means
// InvitationTTL. The role rules (who may invite whom) are the caller's.
func CreateInvitation(ctx context.Context, db *store.DB, inv Invitation, ttl time.Duration) (Invitation, string, error) {
	inv.Email = normEmail(inv.Email)
	if inv.Kind == "" {
		inv.Kind = KindAccount
	}
	if err := checkAccount(inv.Email, inv.Role, inv.Org); err != nil {
		return Invitation{}, "", err
	}
	if inv.Role == RoleSectorAdmin {
		inv.Org = ""
	}
	if _, err := getUser(ctx, db, inv.Email); err == nil {
		return Invitation{}, "", ErrAccountExists
	} else if !errors.Is(err, errNoUser) {
		return Invitation{}, "", err
	}
	if ttl <= 0 {
		ttl = InvitationTTL
	}
	t := time.Now().UTC()
	inv.ID, inv.CreatedAt, inv.ExpiresAt = newID(), t.Format(time.RFC3339), t.Add(ttl).Format(time.RFC3339)
	tok := "inv_" + randomToken(32)
	_, err := db.ExecContext(ctx, `INSERT INTO dash_invitations (id, token_hash, kind, email, role, org, data, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, inv.ID, sha(tok), inv.Kind, inv.Email, inv.Role, inv.Org, inv.Data, inv.CreatedBy, inv.CreatedAt, inv.ExpiresAt)
	if err != nil {
		return Invitation{}, "", fmt.Errorf("dashboard: store invitation: %w", err)
	}
	return inv, tok, nil
}

// checkAccount checks an email address, a role and its organisation.
func checkAccount(email, role, org string) error {
	if !strings.Contains(email, "@") || len(email) > 254 || strings.ContainsAny(email, " /\\") {
		return fmt.Errorf("dashboard: %q is not an email address", email)
	}
	switch role {
	case RoleSectorAdmin, RoleViewer:
	case RoleOrgAdmin:
		if org == "" {
			return errors.New("dashboard: an org-admin needs an organisation")
		}
	default:
		return fmt.Errorf("dashboard: role %q: want sector-admin, org-admin or viewer", role)
	}
	return nil
}

const invitationCols = `id, kind, email, role, org, data, created_by, created_at, expires_at, accepted_at, revoked_at`

func scanInvitation(row interface{ Scan(...any) error }) (Invitation, error) {
	var i Invitation
	err := row.Scan(&i.ID, &i.Kind, &i.Email, &i.Role, &i.Org, &i.Data, &i.CreatedBy, &i.CreatedAt, &i.ExpiresAt, &i.AcceptedAt, &i.RevokedAt)
	return i, err
}

// invitationByToken finds an invitation that can still be accepted.
func invitationByToken(ctx context.Context, q store.Querier, tok string) (Invitation, error) {
	return invitationByHash(ctx, q, sha(tok))
}

func invitationByHash(ctx context.Context, q store.Querier, tokHash string) (Invitation, error) {
	i, err := scanInvitation(q.QueryRowContext(ctx, `SELECT `+invitationCols+` FROM dash_invitations WHERE token_hash = ?`, tokHash))
	if errors.Is(err, sql.ErrNoRows) {
		return Invitation{}, ErrInvitationUsed
	}
	if err != nil {
		return Invitation{}, fmt.Errorf("dashboard: invitation: %w", err)
	}
	switch {
	case i.AcceptedAt != "" || i.RevokedAt != "":
		return Invitation{}, ErrInvitationUsed
	case i.ExpiresAt <= now():
		return Invitation{}, ErrInvitationExpired
	}
	return i, nil
}

// acceptInvitation makes the account (with a password hash, or, accepted
// through single sign-on, none and the identity it is linked to) and runs
// the kind's hooks, all in one transaction: a link works once, even when
// two browsers race.
func (d *Dashboard) acceptInvitation(ctx context.Context, tok, pwHash string) (Invitation, error) {
	return d.acceptInvitationHash(ctx, sha(tok), pwHash, "")
}

func (d *Dashboard) acceptInvitationHash(ctx context.Context, tokHash, pwHash, ssoSubject string) (Invitation, error) {
	var inv Invitation
	err := d.opt.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if inv, err = invitationByHash(ctx, tx, tokHash); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE dash_invitations SET accepted_at = ? WHERE id = ? AND accepted_at = '' AND revoked_at = ''`, now(), inv.ID)
		if err != nil {
			return fmt.Errorf("dashboard: accept invitation: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrInvitationUsed
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM dash_users WHERE email = ?`, inv.Email).Scan(&exists); err != nil {
			return fmt.Errorf("dashboard: accept invitation: %w", err)
		}
		if exists > 0 {
			return ErrAccountExists
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dash_users (email, role, org, pw_hash, must_change, created_at, sso_subject, invited) VALUES (?, ?, ?, ?, 0, ?, ?, 1)`,
			inv.Email, inv.Role, inv.Org, pwHash, now(), ssoSubject); err != nil {
			return fmt.Errorf("dashboard: accept invitation: %w", err)
		}
		for _, h := range d.hooks.of(inv.Kind) {
			if err := h(ctx, tx, inv); err != nil {
				return fmt.Errorf("dashboard: invitation hook (%s): %w", inv.Kind, err)
			}
		}
		return nil
	})
	return inv, err
}

type inviteForm struct {
	Invitation Invitation
	OrgName    string
	SSO        []ssoButton // providers this invitation may be accepted with
	Token      string
}

// invitationForm is the public page a link opens: who is invited, as
// what, and a form to choose a password. It needs no session; like sign-in
// it is protected by a double-submit token.
func (d *Dashboard) invitationForm(w http.ResponseWriter, r *http.Request) {
	d.showInvitation(w, r, http.StatusOK, "")
}

func (d *Dashboard) showInvitation(w http.ResponseWriter, r *http.Request, code int, errKey string) {
	inv, err := invitationByToken(r.Context(), d.opt.DB, r.PathValue("token"))
	p := d.newPage(r, nil, "invite.title")
	switch {
	case errors.Is(err, ErrInvitationUsed):
		p.Error = "invite.used"
		d.render(w, r, http.StatusNotFound, "error", p)
		return
	case errors.Is(err, ErrInvitationExpired):
		p.Error = "invite.expired"
		d.render(w, r, http.StatusGone, "error", p)
		return
	case err != nil:
		d.fail(w, r, nil, err)
		return
	}
	tok := d.preSessionToken(w, r)
	p.CSRF, p.Error = tok, errKey
	p.Form = inviteForm{Invitation: inv, OrgName: d.index().orgName(inv.Org), SSO: d.ssoButtonsFor(inv.Org), Token: r.PathValue("token")}
	d.render(w, r, code, "invitation", p)
}

// acceptInvitationForm sets the password, accepts, and signs the person in.
func (d *Dashboard) acceptInvitationForm(w http.ResponseWriter, r *http.Request) {
	if !d.preSessionForm(w, r, 16<<10) {
		return
	}
	if err := checkForm(r); err != nil {
		d.showInvitation(w, r, http.StatusBadRequest, "error.control_characters")
		return
	}
	tok := r.PathValue("token")
	inv, err := invitationByToken(r.Context(), d.opt.DB, tok)
	if err != nil {
		d.showInvitation(w, r, http.StatusBadRequest, "")
		return
	}
	nw, again := r.PostFormValue("new"), r.PostFormValue("confirm")
	if k := passwordProblem(nw, inv.Email, inv.Org); k != "" {
		d.showInvitation(w, r, http.StatusBadRequest, k)
		return
	}
	if nw != again {
		d.showInvitation(w, r, http.StatusBadRequest, "password.mismatch")
		return
	}
	h, err := hashPassword(nw)
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	inv, err = d.acceptInvitation(r.Context(), tok, h)
	switch {
	case errors.Is(err, ErrAccountExists):
		d.showInvitation(w, r, http.StatusConflict, "invite.account_exists")
		return
	case errors.Is(err, ErrInvitationUsed), errors.Is(err, ErrInvitationExpired):
		d.showInvitation(w, r, http.StatusBadRequest, "")
		return
	case err != nil:
		d.fail(w, r, nil, err)
		return
	}
	d.audit(r.Context(), inv.Email, inv.Org, "person-joined", inv.Email, inv.Role)
	d.startSession(w, r, inv.Email)
}

// startSession signs email in: a new session id, the browser's previous
// session (if any) ended, the sign-in time recorded.
func (d *Dashboard) startSession(w http.ResponseWriter, r *http.Request, email string) {
	if old, err := r.Cookie(sessionCookie); err == nil {
		d.opt.DB.ExecContext(r.Context(), `DELETE FROM dash_sessions WHERE id_hash = ?`, sha(old.Value))
	}
	id, err := newSession(r.Context(), d.opt.DB, email)
	if err != nil {
		d.fail(w, r, nil, err)
		return
	}
	d.opt.DB.ExecContext(r.Context(), `UPDATE dash_users SET last_sign_in = ? WHERE email = ?`, now(), email)
	d.setCookie(w, r, sessionCookie, id, sessionTTL, http.SameSiteLaxMode)
	d.setCookie(w, r, preCSRFCookie, "", -1, http.SameSiteStrictMode)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
