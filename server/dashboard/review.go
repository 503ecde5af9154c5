package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/shared/whitelist"
)

// Review statuses. A decision (approved, kept-blocked) changes the
// organisation's policy and so publishes a new signed whitelist.
const (
	ReviewNew         = "new"
	ReviewUnderReview = "under-review"
	ReviewApproved    = "approved"
	ReviewKeptBlocked = "kept-blocked"
)

// queuePage is how many review items one page of the queue lists.
const queuePage = 50

var reviewStatuses = []string{ReviewNew, ReviewUnderReview, ReviewApproved, ReviewKeptBlocked}

type reviewState struct {
	Status, Alternative, UpdatedBy, UpdatedAt string
}

func (d *Dashboard) reviewStates(ctx context.Context) (map[[2]string]reviewState, error) {
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT org, service, status, alternative, updated_by, updated_at FROM dash_review_items`)
	if err != nil {
		return nil, fmt.Errorf("dashboard: review items: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]reviewState{}
	for rows.Next() {
		var o, sv string
		var st reviewState
		if err := rows.Scan(&o, &sv, &st.Status, &st.Alternative, &st.UpdatedBy, &st.UpdatedAt); err != nil {
			return nil, fmt.Errorf("dashboard: review items: %w", err)
		}
		out[[2]string{o, sv}] = st
	}
	return out, rows.Err()
}

func (d *Dashboard) reviewQueue(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	p := d.newPage(r, s, "review.title")
	pairs, err := aggregates.GetPairs(r.Context(), d.opt.DB, d.opt.Privacy, aggregates.LastDays(d.opt.Now(), reviewDays), "")
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	states, err := d.reviewStates(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	filter := r.URL.Query().Get("status")
	p.Form = map[string]any{"Statuses": reviewStatuses, "Filter": filter}
	seen := map[[2]string]bool{}
	t := p.newTable("review-queue", "review.title", "organisation", "service", "reports#", "review_status", "status", "review")
	addRow := func(org, svc string, c aggregates.Count) {
		k := [2]string{org, svc}
		if seen[k] || !s.user.CanSeeOrg(org) || ix.services[svc] == nil || ix.orgs[org] == nil {
			return
		}
		seen[k] = true
		st := states[k].Status
		if st == "" {
			st = ReviewNew
		}
		if filter != "" && filter != st {
			return
		}
		t.Rows = append(t.Rows, []cell{p.orgCell(ix, org), p.serviceCell(ix, svc), p.count(c), p.tag(st, "review."+st),
			p.policyTag(ix.status(org, svc)),
			p.link(p.t("review.open_item_at", ix.serviceName(svc), ix.orgName(org)), "/review/"+url.PathEscape(org)+"/"+url.PathEscape(svc))})
	}
	for _, pr := range pairs {
		addRow(pr.Org, pr.Service, pr.Count)
	}
	for k := range states { // decided items whose reports have aged out stay listed
		addRow(k[0], k[1], d.opt.Privacy.Count(0))
	}
	// Pages of queuePage rows; an export always has every row.
	pageNo, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if pageNo < 1 {
		pageNo = 1
	}
	if r.URL.Query().Get("export") == "" && len(t.Rows) > queuePage {
		pages := (len(t.Rows) + queuePage - 1) / queuePage
		if pageNo > pages {
			pageNo = pages
		}
		q := url.Values{}
		if filter != "" {
			q.Set("status", filter)
		}
		link := func(n int) string { q.Set("page", strconv.Itoa(n)); return "/review?" + q.Encode() }
		if pageNo > 1 {
			p.Form.(map[string]any)["Prev"] = link(pageNo - 1)
		}
		if pageNo < pages {
			p.Form.(map[string]any)["Next"] = link(pageNo + 1)
		}
		p.Form.(map[string]any)["PageOf"] = p.t("review.page_of", pageNo, pages)
		end := min(pageNo*queuePage, len(t.Rows))
		t.Rows = t.Rows[(pageNo-1)*queuePage : end]
	}
	p.add(&section{ID: "review-queue", Heading: p.t("review.title"), Intro: p.t("review.intro", reviewDays), Table: t})
	d.render(w, r, http.StatusOK, "review", p)
}

type reviewForm struct {
	Org, Service         string
	OrgName, ServiceName string
	Status               string
	Alternative          string
	Alternatives         []option
	Statuses             []string
	CanDecide            bool
	Note                 string
}

type option struct{ Value, Label string }

func (d *Dashboard) reviewItem(w http.ResponseWriter, r *http.Request, s *session) {
	d.showReviewItem(w, r, s, http.StatusOK, "")
}

// reviewTarget reads the organisation and service a review route names and
// answers 404 (ok false) when either is not in the current whitelist.
func (d *Dashboard) reviewTarget(w http.ResponseWriter, r *http.Request, s *session) (ix *index, org, svc string, ok bool) {
	ix = d.index()
	org, svc = r.PathValue("org"), r.PathValue("service")
	if ix.orgs[org] == nil || ix.services[svc] == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return nil, "", "", false
	}
	return ix, org, svc, true
}

func (d *Dashboard) showReviewItem(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string) {
	ix, org, svc, ok := d.reviewTarget(w, r, s)
	if !ok {
		return
	}
	p := d.newPage(r, s, "review.item_title")
	p.TitleArg = ix.serviceName(svc) + " — " + ix.orgName(org)
	p.Error = errKey
	if v, err := strconv.ParseInt(r.URL.Query().Get("version"), 10, 64); err == nil {
		p.Notice = p.t("review.saved_version", v)
	} else if r.URL.Query().Get("saved") != "" {
		p.Notice = p.t("review.saved")
	}
	states, err := d.reviewStates(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	st := states[[2]string{org, svc}]
	if st.Status == "" {
		st.Status = ReviewNew
	}
	f := &reviewForm{Org: org, Service: svc, OrgName: ix.orgName(org), ServiceName: ix.serviceName(svc), Status: st.Status,
		Alternative: st.Alternative, Statuses: reviewStatuses[1:], CanDecide: s.user.CanDecide(org)}
	if pol := ix.policy[[2]string{org, svc}]; pol != nil {
		f.Note = pol.Note
	}
	// Alternatives: the same category first, then every other service.
	cat := ix.services[svc].Category
	for pass := 0; pass < 2; pass++ {
		for _, o := range ix.doc.Services {
			if o.ID != svc && (o.Category == cat) == (pass == 0) {
				f.Alternatives = append(f.Alternatives, option{o.ID, o.Name})
			}
		}
	}
	p.Form = f

	det, err := aggregates.GetService(r.Context(), d.opt.DB, d.opt.Privacy, aggregates.LastDays(d.opt.Now(), reviewDays), svc, org)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	sum := p.newTable("summary", "review.summary", "field", "value")
	alt := ""
	if st.Alternative != "" {
		alt = ix.serviceName(st.Alternative)
	}
	sum.Rows = [][]cell{
		{p.text(p.t("col.reports")), p.count(det.Total)},
		{p.text(p.t("col.review_status")), p.tag(st.Status, "review."+st.Status)},
		{p.text(p.t("col.status")), p.policyTag(ix.status(org, svc))},
		{p.text(p.t("col.alternatives")), p.text(alt)},
		{p.text(p.t("col.approved_by")), p.text(strconv.Itoa(ix.approved[svc]))},
	}
	p.add(&section{ID: "summary", Heading: p.t("review.summary"), Intro: p.t("overview.window", det.Window.From, det.Window.To), Table: sum})
	p.breakdown("methods", "service.methods", "method", "method.", det.Methods)
	p.breakdown("needs", "service.needs", "need", "need.", det.Needs)

	ct := p.newTable("comments", "review.comments", "when", "who", "comment")
	rows, err := d.opt.DB.QueryContext(r.Context(), `SELECT created_at, author, body FROM dash_review_comments WHERE org = ? AND service = ? ORDER BY created_at, id`, org, svc)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var at, who, body string
		if err := rows.Scan(&at, &who, &body); err != nil {
			d.fail(w, r, s, err)
			return
		}
		ct.Rows = append(ct.Rows, []cell{p.text(at), p.text(who), p.text(body)})
	}
	p.add(&section{ID: "comments", Heading: p.t("review.comments"), Table: ct})
	d.render(w, r, code, "review-item", p)
}

func (d *Dashboard) reviewDecide(w http.ResponseWriter, r *http.Request, s *session) {
	ix, org, svc, ok := d.reviewTarget(w, r, s)
	if !ok {
		return
	}
	status := r.PostFormValue("status")
	alt := r.PostFormValue("alternative")
	note := strings.TrimSpace(r.PostFormValue("note"))
	switch {
	case status != ReviewUnderReview && status != ReviewApproved && status != ReviewKeptBlocked:
		d.showReviewItem(w, r, s, http.StatusBadRequest, "review.bad_status")
		return
	case status == ReviewKeptBlocked && (ix.services[alt] == nil || alt == svc):
		d.showReviewItem(w, r, s, http.StatusBadRequest, "review.need_alternative")
		return
	case utf8.RuneCountInString(note) > 500 || !utf8.ValidString(note):
		d.showReviewItem(w, r, s, http.StatusBadRequest, "review.note_too_long")
		return
	}
	if status != ReviewKeptBlocked {
		alt = ""
	}
	var version int64
	if status == ReviewApproved || status == ReviewKeptBlocked {
		cat := d.opt.Catalog()
		if cat == nil {
			d.showReviewItem(w, r, s, http.StatusServiceUnavailable, "review.no_catalog")
			return
		}
		pol := whitelist.Policy{Org: org, Service: svc, Status: whitelist.Approved, Alternatives: []string{}, Note: note}
		if status == ReviewKeptBlocked {
			pol.Status, pol.Alternatives = whitelist.Blocked, []string{alt}
		}
		v, err := cat.SetPolicy(r.Context(), pol, s.user.Email)
		if errors.Is(err, catalog.ErrInvalid) {
			d.showReviewItem(w, r, s, http.StatusBadRequest, "review.note_too_long")
			return
		}
		if err != nil {
			d.fail(w, r, s, fmt.Errorf("set policy %s/%s: %w", org, svc, err))
			return
		}
		// The catalog records the policy change in its own trail, which
		// the audit page shows beside the decision recorded below.
		version = v
	}
	_, err := d.opt.DB.ExecContext(r.Context(), `INSERT INTO dash_review_items (org, service, status, alternative, updated_at, updated_by)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org, service) DO UPDATE SET status = excluded.status, alternative = excluded.alternative,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		org, svc, status, alt, now(), s.user.Email)
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("review decision: %w", err))
		return
	}
	detail := alt
	if version > 0 {
		detail = strings.TrimSpace(fmt.Sprintf("v%d %s", version, alt))
	}
	d.audit(r.Context(), s.user.Email, org, "review-"+status, svc, detail)
	to := "/review/" + url.PathEscape(org) + "/" + url.PathEscape(svc) + "?saved=1"
	if version > 0 {
		to += "&version=" + strconv.FormatInt(version, 10)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (d *Dashboard) reviewComment(w http.ResponseWriter, r *http.Request, s *session) {
	_, org, svc, ok := d.reviewTarget(w, r, s)
	if !ok {
		return
	}
	body := strings.TrimSpace(r.PostFormValue("comment"))
	if body == "" || utf8.RuneCountInString(body) > 2000 || !utf8.ValidString(body) {
		d.showReviewItem(w, r, s, http.StatusBadRequest, "review.bad_comment")
		return
	}
	_, err := d.opt.DB.ExecContext(r.Context(), `INSERT INTO dash_review_comments (id, org, service, author, body, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		newID(), org, svc, s.user.Email, body, now())
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("comment: %w", err))
		return
	}
	d.audit(r.Context(), s.user.Email, org, "comment", svc, "")
	http.Redirect(w, r, "/review/"+url.PathEscape(org)+"/"+url.PathEscape(svc)+"?saved=1", http.StatusSeeOther)
}

// newID is time-ordered (for stable listing) and random (for uniqueness).
func newID() string {
	return time.Now().UTC().Format("20060102T150405.000000000") + "-" + randomToken(6)
}

// audit records a decision or change. A failure is logged, not returned:
// the change it describes has already been made.
func (d *Dashboard) audit(ctx context.Context, actor, org, action, subject, detail string) {
	_, err := d.opt.DB.ExecContext(ctx, `INSERT INTO dash_audit_log (id, at, actor, org, action, subject, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		newID(), now(), actor, org, action, subject, detail)
	if err != nil {
		d.opt.Log.Error("dashboard: audit", "action", action, "err", err)
	}
}

type auditEntry struct {
	at, actor, org, action, subject, detail string
}

// orgAuditActions are the entries anyone who may read the organisation may
// read, because what they record is on that organisation's own pages: its
// review decisions, their discussion and its policies. Every other entry —
// filtering contacts, accounts and passwords, catalog changes, and any kind
// added later and not listed here — is read by sector admins only (the rule
// of /contacts and of account management), so a new kind of entry can never
// leak through the audit log by default. A person always sees what they did.
var orgAuditActions = map[string]bool{"comment": true, "policy-changed": true}

// visibleTo applies, to one entry, the role rule of the thing it records.
func (e auditEntry) visibleTo(u *User) bool {
	switch {
	case u.Role == RoleSectorAdmin:
		return true
	case e.actor != "" && e.actor == u.Email:
		return true
	case e.org == "" || !u.CanSeeOrg(e.org):
		return false
	}
	if strings.HasPrefix(e.action, "code-") || strings.HasPrefix(e.action, "person-") || strings.HasPrefix(e.action, "token-") { // codes, people: their managers only
		return u.CanDecide(e.org)
	}
	return orgAuditActions[e.action] || strings.HasPrefix(e.action, "review-")
}

// auditEntries merges the dashboard's own log (decisions, comments,
// contacts, passwords) with the catalog's (every policy and catalog change,
// whoever made it: the dashboard, `admin policy set`, an import), newest
// first.
func (d *Dashboard) auditEntries(ctx context.Context) ([]auditEntry, error) {
	var out []auditEntry
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT at, actor, org, action, subject, detail FROM dash_audit_log ORDER BY id DESC LIMIT 1000`)
	if err != nil {
		return nil, fmt.Errorf("dashboard: audit log: %w", err)
	}
	for rows.Next() {
		var e auditEntry
		if err := rows.Scan(&e.at, &e.actor, &e.org, &e.action, &e.subject, &e.detail); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dashboard: audit log: %w", err)
		}
		out = append(out, e)
	}
	rows.Close()
	// The catalog's trail, when the catalog keeps one in this database.
	if rows, err := d.opt.DB.QueryContext(ctx, `SELECT at, actor, action, subject, detail, version FROM catalog_audit ORDER BY id DESC LIMIT 1000`); err == nil {
		for rows.Next() {
			var at, version int64
			var e auditEntry
			var action string
			if err := rows.Scan(&at, &e.actor, &action, &e.subject, &e.detail, &version); err != nil {
				break
			}
			e.at = time.Unix(at, 0).UTC().Format(time.RFC3339)
			e.action = "catalog-change"
			if action == "policy set" {
				e.action = "policy-changed"
				e.org, e.subject, _ = strings.Cut(e.subject, "/")
			} else {
				e.detail = action + " " + e.detail
			}
			e.detail = fmt.Sprintf("v%d %s", version, e.detail)
			out = append(out, e)
		}
		rows.Close()
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at > out[j].at })
	return out, nil
}

func (d *Dashboard) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	p := d.newPage(r, s, "audit.title")
	entries, err := d.auditEntries(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	t := p.newTable("audit", "audit.title", "when", "who", "organisation", "action", "subject", "detail")
	for _, e := range entries {
		if !e.visibleTo(s.user) {
			continue
		}
		subj := e.subject
		if ix.services[e.subject] != nil {
			subj = ix.serviceName(e.subject)
		}
		t.Rows = append(t.Rows, []cell{p.text(e.at), p.text(e.actor), p.text(ix.orgName(e.org)), p.text(p.t("action." + e.action)), p.text(subj), p.text(e.detail)})
	}
	p.add(&section{ID: "audit", Heading: p.t("audit.title"), Table: t})
	d.render(w, r, http.StatusOK, "sections", p)
}

var errNotFound = errors.New("not found")

// contact is one person responsible for filtering at an organisation.
type contact struct {
	ID, Org, Name, Role, Email, Phone string
}

func (d *Dashboard) contactsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showContacts(w, r, s, http.StatusOK, "", &contact{})
}

func (d *Dashboard) showContacts(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, form *contact) {
	ix := d.index()
	p := d.newPage(r, s, "contacts.title")
	p.Error = errKey
	if r.URL.Query().Get("saved") != "" {
		p.Notice = p.t("contacts.saved")
	}
	rows, err := d.opt.DB.QueryContext(r.Context(), `SELECT id, org, name, role, email, phone FROM dash_contacts ORDER BY org, name`)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	defer rows.Close()
	t := p.newTable("contacts", "contacts.title", "organisation", "name", "role", "email", "phone", "edit")
	for rows.Next() {
		var c contact
		if err := rows.Scan(&c.ID, &c.Org, &c.Name, &c.Role, &c.Email, &c.Phone); err != nil {
			d.fail(w, r, s, err)
			return
		}
		t.Rows = append(t.Rows, []cell{p.text(ix.orgName(c.Org)), p.text(c.Name), p.text(c.Role), p.text(c.Email), p.text(c.Phone),
			p.link(p.t("contacts.edit_name", c.Name), "/contacts/"+url.PathEscape(c.ID))})
	}
	p.add(&section{ID: "contacts", Heading: p.t("contacts.title"), Intro: p.t("contacts.intro"), Table: t})
	var orgs []option
	for _, o := range ix.doc.Organisations {
		orgs = append(orgs, option{o.ID, o.Name})
	}
	p.Form = map[string]any{"Contact": form, "Orgs": orgs}
	d.render(w, r, code, "contacts", p)
}

func (d *Dashboard) loadContact(ctx context.Context, id string) (*contact, error) {
	c := &contact{ID: id}
	err := d.opt.DB.QueryRowContext(ctx, `SELECT org, name, role, email, phone FROM dash_contacts WHERE id = ?`, id).Scan(&c.Org, &c.Name, &c.Role, &c.Email, &c.Phone)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("dashboard: contact: %w", err)
	}
	return c, nil
}

func (d *Dashboard) contactEdit(w http.ResponseWriter, r *http.Request, s *session) {
	c, err := d.loadContact(r.Context(), r.PathValue("id"))
	if errors.Is(err, errNotFound) {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	d.showContacts(w, r, s, http.StatusOK, "", c)
}

func (d *Dashboard) contactSave(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	c := &contact{ID: r.PathValue("id"), Org: r.PostFormValue("org"), Name: strings.TrimSpace(r.PostFormValue("name")),
		Role: strings.TrimSpace(r.PostFormValue("role")), Email: strings.TrimSpace(r.PostFormValue("email")), Phone: strings.TrimSpace(r.PostFormValue("phone"))}
	if c.ID != "" {
		if _, err := d.loadContact(r.Context(), c.ID); err != nil {
			d.status(w, r, s, http.StatusNotFound, "error.not_found")
			return
		}
	}
	bad := ix.orgs[c.Org] == nil || c.Name == "" || !strings.Contains(c.Email, "@")
	for _, f := range []string{c.Name, c.Role, c.Email, c.Phone} {
		if utf8.RuneCountInString(f) > 200 || !utf8.ValidString(f) {
			bad = true
		}
	}
	if bad {
		d.showContacts(w, r, s, http.StatusBadRequest, "contacts.invalid", c)
		return
	}
	var err error
	if c.ID == "" {
		c.ID = newID()
		_, err = d.opt.DB.ExecContext(r.Context(), `INSERT INTO dash_contacts (id, org, name, role, email, phone, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Org, c.Name, c.Role, c.Email, c.Phone, now())
	} else {
		_, err = d.opt.DB.ExecContext(r.Context(), `UPDATE dash_contacts SET org = ?, name = ?, role = ?, email = ?, phone = ?, updated_at = ? WHERE id = ?`,
			c.Org, c.Name, c.Role, c.Email, c.Phone, now(), c.ID)
	}
	if err != nil {
		d.fail(w, r, s, fmt.Errorf("save contact: %w", err))
		return
	}
	d.audit(r.Context(), s.user.Email, c.Org, "contact-saved", c.Name, c.Email)
	http.Redirect(w, r, "/contacts?saved=1", http.StatusSeeOther)
}
