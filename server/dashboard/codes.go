package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/detour-project/detour/server/reports"
)

// Codes is what the codes and devices pages need from the reports domain
// (reports.Service): enrolment codes with their limits, the devices each
// enrolled and their token use, as counts only — never a code after it is
// made, never a device credential.
type Codes interface {
	ListCodes(ctx context.Context, org string) ([]reports.Code, error)
	GetCode(ctx context.Context, id string) (reports.Code, error)
	CreateCodeWith(ctx context.Context, org string, l reports.Limits) (code, id string, err error)
	RevokeCode(ctx context.Context, codeOrID string, devices bool) (reports.Code, error)
	TokensPerDay() int
}

// admins may manage enrolment codes: a sector admin for every organisation,
// an organisation admin for its own (checked again on each code).
func admins(u *User, _ *http.Request) bool {
	return u.Role == RoleSectorAdmin || (u.Role == RoleOrgAdmin && u.Org != "")
}

// codeForm is the codes page's form data.
type codeForm struct {
	Orgs                     []option
	Org                      string
	Devices, PerHour, Expiry string
	// Created is set once, on the answer to the POST that made the code:
	// the code is never stored, so it can never be shown again.
	Created, CreatedID, EnrolCommand string
	Unusual                          []string // translated warnings
}

// codeState names a code's state for its tag: revoked, expired, full, or
// active.
func codeState(c reports.Code, now time.Time) string {
	switch {
	case c.RevokedAt != "":
		return "revoked"
	case c.ExpiresAt != "" && c.ExpiresAt <= now.UTC().Format(time.RFC3339):
		return "expired"
	case c.Uses >= c.MaxDevices:
		return "full"
	}
	return "active"
}

// visibleCodes lists the codes u may manage.
func (d *Dashboard) visibleCodes(ctx context.Context, u *User) ([]reports.Code, error) {
	org := ""
	if u.Role != RoleSectorAdmin {
		org = u.Org
	}
	return d.opt.Codes.ListCodes(ctx, org)
}

func (d *Dashboard) codesPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showCodes(w, r, s, http.StatusOK, "", &codeForm{Devices: strconv.Itoa(reports.DefaultCodeDevices),
		PerHour: strconv.Itoa(reports.DefaultCodePerHour), Expiry: "30"})
}

func (d *Dashboard) showCodes(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, f *codeForm) {
	if d.opt.Codes == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	ix := d.index()
	p := d.newPage(r, s, "codes.title")
	p.Error = errKey
	codes, err := d.visibleCodes(r.Context(), s.user)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	now := d.opt.Now()
	t := p.newTable("codes", "codes.title", "code", "organisation", "created", "expires", "devices#", "max_devices#",
		"active_devices#", "revoked_devices#", "tokens_today#", "tokens_30d#", "state")
	for _, c := range codes {
		st := p.tag(codeState(c, now), "code_state."+codeState(c, now))
		if c.Unusual() && (st.Tag == "active" || st.Tag == "full") {
			st = p.tag("unusual", "code_state.unusual")
		}
		if c.Unusual() {
			f.Unusual = append(f.Unusual, p.t("codes.unusual", c.ID, ix.orgName(c.Org), c.Enrolled24h, c.Refused24h, c.PerHour))
		}
		exp := c.ExpiresAt
		if exp == "" {
			exp = p.t("codes.never")
		}
		t.Rows = append(t.Rows, []cell{p.link(c.ID, "/codes/"+url.PathEscape(c.ID)), p.text(ix.orgName(c.Org)), p.text(c.CreatedAt), p.text(exp),
			p.text(itoa(c.Uses)), p.text(itoa(c.MaxDevices)), p.text(itoa(c.Active)), p.text(itoa(c.Revoked)),
			p.text(itoa(c.TokensToday)), p.text(itoa(c.Tokens30d)), st})
	}
	p.add(&section{ID: "codes", Heading: p.t("codes.list"), Intro: p.t("codes.intro") + " " + p.t("codes.budget", d.opt.Codes.TokensPerDay()), Table: t})
	for _, o := range ix.doc.Organisations {
		if s.user.CanDecide(o.ID) {
			f.Orgs = append(f.Orgs, option{o.ID, o.Name})
		}
	}
	p.Form = f
	d.render(w, r, code, "codes", p)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// createCode makes a code and shows it once, on this answer only (not
// after a redirect: the code would have to be kept somewhere to show it).
func (d *Dashboard) createCode(w http.ResponseWriter, r *http.Request, s *session) {
	if d.opt.Codes == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	f := &codeForm{Org: r.PostFormValue("org"), Devices: strings.TrimSpace(r.PostFormValue("devices")),
		PerHour: strings.TrimSpace(r.PostFormValue("per_hour")), Expiry: strings.TrimSpace(r.PostFormValue("expires_days"))}
	if !s.user.CanDecide(f.Org) {
		d.status(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	devices, err1 := strconv.ParseInt(f.Devices, 10, 64)
	perHour, err2 := strconv.ParseInt(f.PerHour, 10, 64)
	var expires time.Time
	var err3 error
	if f.Expiry != "" {
		var days int64
		days, err3 = strconv.ParseInt(f.Expiry, 10, 64)
		if err3 == nil && (days < 1 || days > 3650) {
			err3 = errors.New("out of range")
		}
		expires = d.opt.Now().Add(time.Duration(days) * 24 * time.Hour)
	}
	switch {
	case err1 != nil || devices < 1 || devices > reports.MaxCodeDevices:
		d.showCodes(w, r, s, http.StatusBadRequest, "codes.bad_devices", f)
		return
	case err2 != nil || perHour < 1 || perHour > reports.MaxCodeDevices:
		d.showCodes(w, r, s, http.StatusBadRequest, "codes.bad_per_hour", f)
		return
	case err3 != nil:
		d.showCodes(w, r, s, http.StatusBadRequest, "codes.bad_expiry", f)
		return
	}
	code, id, err := d.opt.Codes.CreateCodeWith(r.Context(), f.Org, reports.Limits{Devices: devices, PerHour: perHour, Expires: expires})
	switch {
	case errors.Is(err, reports.ErrUnknownOrg):
		d.showCodes(w, r, s, http.StatusBadRequest, "codes.unknown_org", f)
		return
	case errors.Is(err, reports.ErrBadLimits):
		d.showCodes(w, r, s, http.StatusBadRequest, "codes.bad_devices", f)
		return
	case err != nil:
		d.fail(w, r, s, err)
		return
	}
	detail := "devices " + f.Devices + ", per hour " + f.PerHour
	if !expires.IsZero() {
		detail += ", expires " + expires.UTC().Format(time.RFC3339)
	}
	d.audit(r.Context(), s.user.Email, f.Org, "code-created", id, detail)
	scheme := "http"
	if d.secure(r) {
		scheme = "https"
	}
	f.Created, f.CreatedID = code, id
	f.EnrolCommand = "detour enrol --hub " + scheme + "://" + r.Host + " --code " + code
	// The page that shows a secret is not kept by the browser's history.
	d.showCodes(w, r, s, http.StatusOK, "", f)
}

// codeTarget loads the code named in the path if s may manage it.
func (d *Dashboard) codeTarget(w http.ResponseWriter, r *http.Request, s *session) (reports.Code, bool) {
	if d.opt.Codes == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return reports.Code{}, false
	}
	c, err := d.opt.Codes.GetCode(r.Context(), strings.ToLower(r.PathValue("id")))
	if errors.Is(err, reports.ErrUnknownCode) || (err == nil && !s.user.CanDecide(c.Org)) {
		// Another organisation's code is as absent as a code that is not.
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return reports.Code{}, false
	}
	if err != nil {
		d.fail(w, r, s, err)
		return reports.Code{}, false
	}
	return c, true
}

func (d *Dashboard) codePage(w http.ResponseWriter, r *http.Request, s *session) {
	c, ok := d.codeTarget(w, r, s)
	if !ok {
		return
	}
	d.showCode(w, r, s, c, "")
}

func (d *Dashboard) showCode(w http.ResponseWriter, r *http.Request, s *session, c reports.Code, notice string) {
	ix := d.index()
	p := d.newPage(r, s, "code.title")
	p.TitleArg = c.ID
	p.Notice = notice
	now := d.opt.Now()
	exp, revoked := c.ExpiresAt, c.RevokedAt
	if exp == "" {
		exp = p.t("codes.never")
	}
	if revoked == "" {
		revoked = p.t("code.not_revoked")
	}
	t := p.newTable("code", "code.figures", "field", "value")
	for _, row := range [][2]string{
		{"col.organisation", ix.orgName(c.Org)},
		{"col.created", c.CreatedAt},
		{"col.expires", exp},
		{"col.revoked_at", revoked},
		{"col.state", p.t("code_state." + codeState(c, now))},
		{"col.devices", itoa(c.Uses)},
		{"col.max_devices", itoa(c.MaxDevices)},
		{"col.per_hour", itoa(c.PerHour)},
		{"col.active_devices", itoa(c.Active)},
		{"col.revoked_devices", itoa(c.Revoked)},
		{"col.tokens_today", itoa(c.TokensToday)},
		{"col.tokens_30d", itoa(c.Tokens30d)},
		{"col.token_budget", itoa(c.MaxDevices * int64(d.opt.Codes.TokensPerDay()))},
		{"col.enrolled_24h", itoa(c.Enrolled24h)},
		{"col.refused_24h", itoa(c.Refused24h)},
	} {
		t.Rows = append(t.Rows, []cell{p.text(p.t(row[0])), p.text(row[1])})
	}
	intro := p.t("code.intro")
	if c.Unusual() {
		intro += " " + p.t("codes.unusual", c.ID, ix.orgName(c.Org), c.Enrolled24h, c.Refused24h, c.PerHour)
	}
	p.add(&section{ID: "code", Heading: p.t("code.figures"), Intro: intro, Table: t})
	p.Form = struct {
		ID            string
		Revoked       bool
		ActiveDevices int64
	}{c.ID, c.RevokedAt != "", c.Active}
	d.render(w, r, http.StatusOK, "code", p)
}

// revokeCode revokes a code, and with devices=1 every device it enrolled:
// their token requests are refused from now on and their helpers say that
// they must be enrolled again.
func (d *Dashboard) revokeCode(w http.ResponseWriter, r *http.Request, s *session) {
	c, ok := d.codeTarget(w, r, s)
	if !ok {
		return
	}
	devices := r.PostFormValue("devices") == "1"
	rc, err := d.opt.Codes.RevokeCode(r.Context(), c.ID, devices)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	action, p := "code-revoked", d.newPage(r, s, "code.title")
	notice := p.t("code.revoked_notice")
	if devices {
		action, notice = "code-devices-revoked", p.t("code.devices_revoked_notice", rc.Revoked)
		d.audit(r.Context(), s.user.Email, c.Org, action, c.ID, "devices revoked: "+itoa(rc.Revoked))
	} else {
		d.audit(r.Context(), s.user.Email, c.Org, action, c.ID, "")
	}
	c, err = d.opt.Codes.GetCode(r.Context(), c.ID)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	d.showCode(w, r, s, c, notice)
}

// unusualCodes adds to an admin's overview the codes whose last day looks
// like misuse (reports.Code.Unusual), so that the organisation's admins see
// it without opening the codes page. Nothing is added when there are none.
func (d *Dashboard) unusualCodes(r *http.Request, s *session, p *page) error {
	if d.opt.Codes == nil || !admins(s.user, r) {
		return nil
	}
	codes, err := d.visibleCodes(r.Context(), s.user)
	if err != nil {
		return err
	}
	ix := d.index()
	t := p.newTable("unusual-codes", "codes.unusual_heading", "code", "organisation", "enrolled_24h#", "refused_24h#", "per_hour#")
	for _, c := range codes {
		if c.Unusual() && c.RevokedAt == "" {
			t.Rows = append(t.Rows, []cell{p.link(c.ID, "/codes/"+url.PathEscape(c.ID)), p.text(ix.orgName(c.Org)),
				p.text(itoa(c.Enrolled24h)), p.text(itoa(c.Refused24h)), p.text(itoa(c.PerHour))})
		}
	}
	if len(t.Rows) > 0 {
		p.add(&section{ID: "unusual-codes", Heading: p.t("codes.unusual_heading"), Intro: p.t("codes.unusual_intro"), Table: t})
	}
	return nil
}
