package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/detour-project/detour/server/catalog"
)

// Agreements: the agreed cross-organisation whitelist (DESIGN.md). Filtering
// owners — organisation admins and sector admins — propose a service for
// working across organisations, and each organisation's admin endorses it
// (approving the service in the same change) or declines it with a reason.
// Viewers never see these pages: declines and their reasons, and the
// discussion beside them, stay among filtering owners.

// agreementStore is the part of the hub's catalog the agreement pages use;
// the real catalog has it, and a hub without it shows no agreement pages.
type agreementStore interface {
	Propose(ctx context.Context, service, by, note, actor string) (int64, error)
	Endorse(ctx context.Context, org, service, actor string) (int64, error)
	Decline(ctx context.Context, org, service, reason, actor string) (int64, error)
	Agreements(ctx context.Context) ([]catalog.Agreement, error)
}

func (d *Dashboard) agreementStore() agreementStore {
	a, _ := d.opt.Catalog().(agreementStore)
	return a
}

// owners may read and take part: organisation admins of a member
// organisation and sector admins. Viewers may not.
func owners(u *User, r *http.Request) bool { return admins(u, r) }

// answerOrg is the organisation u answers for: an organisation admin's own,
// whatever the form says; a sector admin's choice.
func answerOrg(u *User, posted string) string {
	if u.Role == RoleOrgAdmin {
		return u.Org
	}
	return posted
}

type agreementsForm struct {
	Services []option
	Orgs     []option // for a sector admin: on whose behalf
	Service  string
	Note     string
	By       string
}

func (d *Dashboard) agreementsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showAgreements(w, r, s, http.StatusOK, "", &agreementsForm{})
}

func (d *Dashboard) showAgreements(w http.ResponseWriter, r *http.Request, s *session, code int, errKey string, f *agreementsForm) {
	st := d.agreementStore()
	if st == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	ix := d.index()
	p := d.newPage(r, s, "agreements.title")
	p.Error = errKey
	if r.URL.Query().Get("saved") == "1" {
		p.Notice = p.t("agreements.saved")
	}
	list, err := st.Agreements(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	t := p.newTable("agreements", "agreements.title", "service", "category", "proposed_by", "agreed_by#", "endorsed_by", "declined#")
	proposed := map[string]bool{}
	for _, a := range list {
		proposed[a.Service] = true
		names := make([]string, 0, len(a.EndorsedBy))
		for _, o := range a.EndorsedBy {
			names = append(names, ix.orgName(o))
		}
		declined := 0
		for _, an := range a.Answers {
			if an.Decision == catalog.Declined {
				declined++
			}
		}
		t.Rows = append(t.Rows, []cell{p.link(ix.serviceName(a.Service), "/agreements/"+url.PathEscape(a.Service)),
			p.text(p.t("category." + a.Category)), p.text(ix.orgName(a.ProposedBy)), p.text(strconv.Itoa(len(a.EndorsedBy))),
			p.text(strings.Join(names, ", ")), p.text(strconv.Itoa(declined))})
	}
	t.Empty = p.t("agreements.none")
	p.add(&section{ID: "agreements", Heading: p.t("agreements.list"), Intro: p.t("agreements.intro"), Table: t})
	f.Services = nil
	for _, svc := range ix.doc.Services {
		if !proposed[svc.ID] {
			f.Services = append(f.Services, option{svc.ID, svc.Name})
		}
	}
	f.Orgs = nil
	if s.user.Role == RoleSectorAdmin {
		f.Orgs = ix.orgOptions()
	}
	p.Form = f
	d.render(w, r, code, "agreements", p)
}

func (d *Dashboard) proposeAgreement(w http.ResponseWriter, r *http.Request, s *session) {
	st := d.agreementStore()
	if st == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	f := &agreementsForm{Service: r.PostFormValue("service"), Note: strings.TrimSpace(r.PostFormValue("note")), By: answerOrg(s.user, r.PostFormValue("by"))}
	ix := d.index()
	switch {
	case ix.services[f.Service] == nil:
		d.showAgreements(w, r, s, http.StatusBadRequest, "agreements.unknown_service", f)
		return
	case ix.orgs[f.By] == nil || !s.user.CanDecide(f.By):
		d.showAgreements(w, r, s, http.StatusBadRequest, "agreements.unknown_org", f)
		return
	case len(f.Note) > catalog.MaxAgreementText:
		d.showAgreements(w, r, s, http.StatusBadRequest, "agreements.too_long", f)
		return
	}
	if _, err := st.Propose(r.Context(), f.Service, f.By, f.Note, s.user.Email); err != nil {
		d.agreementError(w, r, s, err, func(key string) { d.showAgreements(w, r, s, http.StatusBadRequest, key, f) })
		return
	}
	d.audit(r.Context(), s.user.Email, f.By, "agreement-proposed", f.Service, "")
	http.Redirect(w, r, "/agreements/"+url.PathEscape(f.Service)+"?saved=1", http.StatusSeeOther)
}

// agreementError answers a refusal from the catalog with its form again,
// and anything else as a failure.
func (d *Dashboard) agreementError(w http.ResponseWriter, r *http.Request, s *session, err error, again func(key string)) {
	if errors.Is(err, catalog.ErrInvalid) {
		key := "agreements.invalid"
		if strings.Contains(err.Error(), "already proposed") {
			key = "agreements.exists"
		}
		again(key)
		return
	}
	d.fail(w, r, s, err)
}

type agreementForm struct {
	Service  string
	Escaped  string
	Orgs     []option // organisations u may answer for
	Org      string
	Decision string
	Reason   string
	Thread   string // the forum thread's path, for the post form
	Body     string
}

// findAgreement loads the agreement named in the path.
func (d *Dashboard) findAgreement(w http.ResponseWriter, r *http.Request, s *session) (agreementStore, *catalog.Agreement, bool) {
	st := d.agreementStore()
	if st == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return nil, nil, false
	}
	list, err := st.Agreements(r.Context())
	if err != nil {
		d.fail(w, r, s, err)
		return nil, nil, false
	}
	for i := range list {
		if list[i].Service == r.PathValue("service") {
			return st, &list[i], true
		}
	}
	d.status(w, r, s, http.StatusNotFound, "error.not_found")
	return nil, nil, false
}

func (d *Dashboard) agreementPage(w http.ResponseWriter, r *http.Request, s *session) {
	_, a, ok := d.findAgreement(w, r, s)
	if !ok {
		return
	}
	d.showAgreement(w, r, s, a, http.StatusOK, "", &agreementForm{})
}

func (d *Dashboard) showAgreement(w http.ResponseWriter, r *http.Request, s *session, a *catalog.Agreement, code int, errKey string, f *agreementForm) {
	ix := d.index()
	p := d.newPage(r, s, "agreement.title")
	p.TitleArg, p.Error = ix.serviceName(a.Service), errKey
	if r.URL.Query().Get("saved") == "1" {
		p.Notice = p.t("agreements.saved")
	}
	dt := p.newTable("agreement", "agreement.details_table", "field", "value")
	dt.Rows = [][]cell{
		{p.text(p.t("col.service")), p.serviceCell(ix, a.Service)},
		{p.text(p.t("col.category")), p.text(p.t("category." + a.Category))},
		{p.text(p.t("col.proposed_by")), p.text(ix.orgName(a.ProposedBy))},
		{p.text(p.t("col.proposed_on")), p.text(a.ProposedAt.Format("2006-01-02"))},
		{p.text(p.t("col.note")), p.text(a.Note)},
		{p.text(p.t("col.agreed_by")), p.text(p.t("agreement.agreed_by", len(a.EndorsedBy), len(ix.doc.Organisations)))},
	}
	p.add(&section{ID: "agreement", Heading: p.t("agreement.details"), Table: dt})
	at := p.newTable("answers", "agreement.answers_table", "organisation", "answer", "reason", "when", "who")
	answered := map[string]bool{}
	for _, an := range a.Answers {
		answered[an.Org] = true
		at.Rows = append(at.Rows, []cell{p.text(ix.orgName(an.Org)), p.tag(an.Decision, "answer."+an.Decision), p.text(an.Reason),
			p.text(an.At.Format("2006-01-02")), p.text(an.Actor)})
	}
	at.Empty = p.t("agreement.no_answers")
	p.add(&section{ID: "answers", Heading: p.t("agreement.answers"), Intro: p.t("agreement.answers_intro"), Table: at})
	// Organisations yet to answer, and what each one's policy is now: how
	// near the agreement is to everyone.
	wt := p.newTable("waiting", "agreement.waiting_table", "organisation", "status")
	for _, o := range ix.doc.Organisations {
		if !answered[o.ID] {
			st := ix.status(o.ID, a.Service)
			wt.Rows = append(wt.Rows, []cell{p.text(o.Name), p.policyTag(st)})
		}
	}
	wt.Empty = p.t("agreement.all_answered")
	p.add(&section{ID: "waiting", Heading: p.t("agreement.waiting"), Table: wt})
	d.addThread(r, p, s, threadAgreement+a.Service)

	f.Service, f.Escaped, f.Thread = a.Service, url.PathEscape(a.Service), "/agreements/"+url.PathEscape(a.Service)+"/posts"
	f.Orgs = nil
	for _, o := range ix.doc.Organisations {
		if s.user.CanDecide(o.ID) {
			f.Orgs = append(f.Orgs, option{o.ID, o.Name})
		}
	}
	if f.Org == "" && s.user.Role == RoleOrgAdmin {
		f.Org = s.user.Org
	}
	p.Form = f
	d.render(w, r, code, "agreement", p)
}

func (d *Dashboard) answerAgreement(w http.ResponseWriter, r *http.Request, s *session) {
	st, a, ok := d.findAgreement(w, r, s)
	if !ok {
		return
	}
	f := &agreementForm{Org: answerOrg(s.user, r.PostFormValue("org")), Decision: r.PostFormValue("decision"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if d.index().orgs[f.Org] == nil || !s.user.CanDecide(f.Org) {
		d.status(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	var err error
	switch f.Decision {
	case catalog.Endorsed:
		_, err = st.Endorse(r.Context(), f.Org, a.Service, s.user.Email)
	case catalog.Declined:
		if f.Reason == "" {
			d.showAgreement(w, r, s, a, http.StatusBadRequest, "agreement.reason_needed", f)
			return
		}
		if len(f.Reason) > catalog.MaxAgreementText {
			d.showAgreement(w, r, s, a, http.StatusBadRequest, "agreements.too_long", f)
			return
		}
		_, err = st.Decline(r.Context(), f.Org, a.Service, f.Reason, s.user.Email)
	default:
		d.showAgreement(w, r, s, a, http.StatusBadRequest, "agreement.choose", f)
		return
	}
	if err != nil {
		d.agreementError(w, r, s, err, func(key string) { d.showAgreement(w, r, s, a, http.StatusBadRequest, key, f) })
		return
	}
	d.audit(r.Context(), s.user.Email, f.Org, "agreement-"+f.Decision, a.Service, "")
	http.Redirect(w, r, "/agreements/"+url.PathEscape(a.Service)+"?saved=1", http.StatusSeeOther)
}

func (d *Dashboard) postAgreement(w http.ResponseWriter, r *http.Request, s *session) {
	_, a, ok := d.findAgreement(w, r, s)
	if !ok {
		return
	}
	body := strings.TrimSpace(r.PostFormValue("body"))
	if !validPost(body) {
		d.showAgreement(w, r, s, a, http.StatusBadRequest, "forum.bad_post", &agreementForm{Body: body})
		return
	}
	if err := d.addPost(r.Context(), threadAgreement+a.Service, s.user, body); err != nil {
		d.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/agreements/"+url.PathEscape(a.Service)+"?posted=1#posts", http.StatusSeeOther)
}

func validPost(body string) bool {
	return body != "" && utf8.ValidString(body) && utf8.RuneCountInString(body) <= maxPost
}
