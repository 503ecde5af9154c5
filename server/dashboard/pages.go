package dashboard

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/detour-project/detour/server/aggregates"
	"github.com/detour-project/detour/shared/whitelist"
)

// reviewDays is how far back the review queue and organisation pages look:
// the same window as the overview and service pages, so that no two pages
// show overlapping periods whose difference would be a small number.
const reviewDays = aggregates.DefaultDays

// index gives names and policies of the current whitelist by id.
type index struct {
	doc      *whitelist.Document
	services map[string]*whitelist.Service
	orgs     map[string]*whitelist.Organisation
	policy   map[[2]string]*whitelist.Policy // {org, service}
	approved map[string]int                  // service -> organisations approving it
}

func newIndex(doc *whitelist.Document) *index {
	ix := &index{doc: doc, services: map[string]*whitelist.Service{}, orgs: map[string]*whitelist.Organisation{},
		policy: map[[2]string]*whitelist.Policy{}, approved: map[string]int{}}
	for i := range doc.Services {
		ix.services[doc.Services[i].ID] = &doc.Services[i]
	}
	for i := range doc.Organisations {
		ix.orgs[doc.Organisations[i].ID] = &doc.Organisations[i]
	}
	for i := range doc.Policies {
		p := &doc.Policies[i]
		ix.policy[[2]string{p.Org, p.Service}] = p
		if p.Status == whitelist.Approved {
			ix.approved[p.Service]++
		}
	}
	return ix
}

func (ix *index) serviceName(id string) string {
	if s := ix.services[id]; s != nil {
		return s.Name
	}
	return id
}

// orgOptions lists every organisation as a form choice, in the
// whitelist's order (the pages that let a sector admin pick one).
func (ix *index) orgOptions() []option {
	out := make([]option, 0, len(ix.doc.Organisations))
	for _, o := range ix.doc.Organisations {
		out = append(out, option{o.ID, o.Name})
	}
	return out
}

func (ix *index) orgName(id string) string {
	if o := ix.orgs[id]; o != nil {
		return o.Name
	}
	return id
}

func (ix *index) status(org, service string) string {
	if p := ix.policy[[2]string{org, service}]; p != nil {
		return p.Status
	}
	return whitelist.Unknown
}

func (p *page) serviceCell(ix *index, id string) cell {
	return p.link(ix.serviceName(id), "/services/"+url.PathEscape(id))
}

func (p *page) orgCell(ix *index, id string) cell {
	if p.User != nil && p.User.CanSeeOrg(id) {
		return p.link(ix.orgName(id), "/orgs/"+url.PathEscape(id))
	}
	return p.text(ix.orgName(id))
}

func (p *page) policyTag(status string) cell { return p.tag(status, "status."+status) }

// trendSection is a chart with its data table beside it.
func (p *page) trendSection(id, headingKey string, days []aggregates.Day) {
	t := p.newTable(id, headingKey, "day", "reports#")
	for _, d := range days {
		t.Rows = append(t.Rows, []cell{p.text(d.Day), p.count(d.Count)})
	}
	p.add(&section{ID: id, Heading: p.t(headingKey), Chart: p.trendChart(id+"-chart", headingKey, days), Table: t})
}

// breakdown is a table of a detail's items (methods, vendors, needs).
func (p *page) breakdown(id, headingKey, col, prefix string, items []aggregates.Item) {
	t := p.newTable(id, headingKey, col, "reports#")
	for _, it := range items {
		name := it.Key
		if prefix != "" {
			name = p.t(prefix + it.Key)
		}
		if col == "vendor" && it.Key == "" {
			name = p.t("vendor.none")
		}
		t.Rows = append(t.Rows, []cell{p.text(name), p.count(it.Count)})
	}
	p.add(&section{ID: id, Heading: p.t(headingKey), Table: t})
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, s *session) {
	p := d.newPage(r, s, "overview.title")
	ov, err := aggregates.GetOverview(r.Context(), d.opt.DB, d.opt.Privacy, aggregates.LastDays(d.opt.Now(), aggregates.DefaultDays), "")
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	ix := d.index()
	week := p.count(ov.BlocksThisWeek)
	p.add(&section{ID: "week", Heading: p.t("overview.week"), Intro: p.t("overview.week_intro", ov.Week.From, ov.Week.To), Big: &week,
		Fewer: p.t("count.fewer", p.K)})
	t := p.newTable("top-services", "overview.top", "service", "reports#", "approved_by#")
	for _, it := range ov.TopServices {
		t.Rows = append(t.Rows, []cell{p.serviceCell(ix, it.Key), p.count(it.Count), p.text(strconv.Itoa(ix.approved[it.Key]))})
	}
	p.add(&section{ID: "top-services", Heading: p.t("overview.top"), Intro: p.t("overview.window", ov.Window.From, ov.Window.To), Table: t})
	p.trendSection("trend", "overview.trend", ov.Trend)
	p.breakdown("needs", "overview.needs", "need", "need.", ov.Needs)
	if err := d.unusualCodes(r, s, p); err != nil {
		d.fail(w, r, s, err)
		return
	}
	d.render(w, r, http.StatusOK, "sections", p)
}

func (d *Dashboard) servicePage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	id := r.PathValue("id")
	svc := ix.services[id]
	if svc == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	p := d.newPage(r, s, "service.title")
	p.TitleArg = svc.Name
	det, err := aggregates.GetService(r.Context(), d.opt.DB, d.opt.Privacy, aggregates.LastDays(d.opt.Now(), aggregates.DefaultDays), id, "")
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	total := p.count(det.Total)
	p.add(&section{ID: "total", Heading: p.t("service.total"), Intro: p.t("service.about", svc.Vendor, p.t("category."+svc.Category)) + " " + p.t("overview.window", det.Window.From, det.Window.To), Big: &total})
	p.breakdown("methods", "service.methods", "method", "method.", det.Methods)
	p.breakdown("vendors", "service.vendors", "vendor", "", det.Vendors)
	p.breakdown("needs", "service.needs", "need", "need.", det.Needs)
	p.trendSection("daily", "service.daily", det.Daily)
	t := p.newTable("orgs", "service.orgs", "organisation", "status", "alternatives", "note")
	for _, o := range ix.doc.Organisations {
		pol := ix.policy[[2]string{o.ID, id}]
		st, alts, note := whitelist.Unknown, "", ""
		if pol != nil {
			st, note = pol.Status, pol.Note
			for i, a := range pol.Alternatives {
				if i > 0 {
					alts += ", "
				}
				alts += ix.serviceName(a)
			}
		}
		t.Rows = append(t.Rows, []cell{p.orgCell(ix, o.ID), p.policyTag(st), p.text(alts), p.text(note)})
	}
	p.add(&section{ID: "orgs", Heading: p.t("service.orgs"), Table: t})
	d.render(w, r, http.StatusOK, "sections", p)
}

func (d *Dashboard) orgsPage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	p := d.newPage(r, s, "orgs.title")
	tab, err := aggregates.GetOrgServiceTable(r.Context(), d.opt.DB, d.opt.Privacy, aggregates.LastDays(d.opt.Now(), reviewDays))
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	t := p.newTable("orgs", "orgs.title", "organisation", "sector", "reports#", "approved#", "blocked#")
	for _, o := range ix.doc.Organisations {
		if !s.user.CanSeeOrg(o.ID) {
			continue
		}
		var ap, bl int
		for _, pol := range ix.doc.Policies {
			if pol.Org == o.ID && pol.Status == whitelist.Approved {
				ap++
			} else if pol.Org == o.ID && pol.Status == whitelist.Blocked {
				bl++
			}
		}
		total, ok := tab.OrgTotals[o.ID]
		if !ok {
			total = d.opt.Privacy.Count(0)
		}
		t.Rows = append(t.Rows, []cell{p.orgCell(ix, o.ID), p.text(o.Sector), p.count(total),
			p.text(strconv.Itoa(ap)), p.text(strconv.Itoa(bl))})
	}
	p.add(&section{ID: "orgs", Heading: p.t("orgs.title"), Intro: p.t("orgs.intro", reviewDays), Table: t})
	d.render(w, r, http.StatusOK, "sections", p)
}

func (d *Dashboard) orgPage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	id := r.PathValue("id")
	if ix.orgs[id] == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	p := d.newPage(r, s, "org.title")
	p.TitleArg = ix.orgName(id)
	det, err := aggregates.GetOrg(r.Context(), d.opt.DB, d.opt.Privacy, aggregates.LastDays(d.opt.Now(), reviewDays), id)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	total := p.count(det.Total)
	p.add(&section{ID: "total", Heading: p.t("org.total"), Intro: p.t("overview.window", det.Window.From, det.Window.To), Big: &total})
	t := p.newTable("blocked-services", "org.ranked", "service", "reports#", "status", "review")
	for _, it := range det.Services {
		t.Rows = append(t.Rows, []cell{p.serviceCell(ix, it.Key), p.count(it.Count), p.policyTag(ix.status(id, it.Key)),
			p.link(p.t("review.open_item", ix.serviceName(it.Key)), "/review/"+url.PathEscape(id)+"/"+url.PathEscape(it.Key))})
	}
	p.add(&section{ID: "blocked-services", Heading: p.t("org.ranked"), Table: t})

	// Services this organisation blocks (or restricts) that its peers
	// approve, the most widely approved first.
	type peer struct {
		svc string
		n   int
	}
	var peers []peer
	for _, pol := range ix.doc.Policies {
		if pol.Org != id || (pol.Status != whitelist.Blocked && pol.Status != whitelist.Restricted) {
			continue
		}
		if n := ix.approved[pol.Service]; n > 0 {
			peers = append(peers, peer{pol.Service, n})
		}
	}
	sort.Slice(peers, func(i, j int) bool {
		if peers[i].n != peers[j].n {
			return peers[i].n > peers[j].n
		}
		return peers[i].svc < peers[j].svc
	})
	pt := p.newTable("peers-approve", "org.peers", "service", "status", "peers_approving#")
	for _, pe := range peers {
		pt.Rows = append(pt.Rows, []cell{p.serviceCell(ix, pe.svc), p.policyTag(ix.status(id, pe.svc)), p.text(strconv.Itoa(pe.n))})
	}
	p.add(&section{ID: "peers-approve", Heading: p.t("org.peers"), Intro: p.t("org.peers_intro"), Table: pt})
	p.breakdown("methods", "service.methods", "method", "method.", det.Methods)
	p.breakdown("needs", "service.needs", "need", "need.", det.Needs)
	p.trendSection("daily", "service.daily", det.Daily)
	d.render(w, r, http.StatusOK, "sections", p)
}

func (d *Dashboard) matrixPage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	p := d.newPage(r, s, "matrix.title")
	t := p.newTable("matrix", "matrix.title", "service")
	for _, o := range ix.doc.Organisations {
		t.Cols = append(t.Cols, o.ID)
		t.Head = append(t.Head, o.Name)
		t.Num = append(t.Num, false)
	}
	for _, sv := range ix.doc.Services {
		row := []cell{p.serviceCell(ix, sv.ID)}
		for _, o := range ix.doc.Organisations {
			row = append(row, p.policyTag(ix.status(o.ID, sv.ID)))
		}
		t.Rows = append(t.Rows, row)
	}
	p.add(&section{ID: "matrix", Heading: p.t("matrix.title"), Intro: p.t("matrix.intro"), Table: t})
	d.render(w, r, http.StatusOK, "sections", p)
}
