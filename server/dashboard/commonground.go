package dashboard

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/detour-project/detour/shared/whitelist"
)

// The common-ground page: per category, which tools most member
// organisations approve, where each is blocked, and which agreements are
// nearest to everyone. It is drawn from the signed whitelist alone (policies
// and endorsements, which every helper holds), never from reports, so no
// count here needs k-anonymity and none is suppressed. Declines are not on
// it: they belong to the filtering owners' agreement pages.

type commonGroundForm struct {
	Categories []option
	Category   string
}

func (d *Dashboard) commonGroundPage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	cat := r.URL.Query().Get("category")
	if cat == "" {
		cat = "video"
	}
	known := false
	for _, c := range whitelist.Categories {
		known = known || c == cat
	}
	if !known {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	p := d.newPage(r, s, "common.title")
	p.TitleArg = p.t("category." + cat)
	total := len(ix.doc.Organisations)

	type row struct {
		svc                                  *whitelist.Service
		approved, blocked, restricted, other int
		blockedAt                            []string
	}
	var rows []row
	for i := range ix.doc.Services {
		svc := &ix.doc.Services[i]
		if svc.Category != cat {
			continue
		}
		rw := row{svc: svc}
		for _, o := range ix.doc.Organisations {
			switch ix.status(o.ID, svc.ID) {
			case whitelist.Approved:
				rw.approved++
			case whitelist.Blocked:
				rw.blocked++
				rw.blockedAt = append(rw.blockedAt, o.Name)
			case whitelist.Restricted:
				rw.restricted++
			default:
				rw.other++
			}
		}
		rows = append(rows, rw)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].approved != rows[j].approved {
			return rows[i].approved > rows[j].approved
		}
		if rows[i].blocked != rows[j].blocked {
			return rows[i].blocked < rows[j].blocked
		}
		return rows[i].svc.ID < rows[j].svc.ID
	})
	t := p.newTable("common-ground", "common.table", "service", "approved#", "blocked#", "restricted#", "undecided#", "blocked_at")
	for _, rw := range rows {
		t.Rows = append(t.Rows, []cell{p.serviceCell(ix, rw.svc.ID), p.text(strconv.Itoa(rw.approved)), p.text(strconv.Itoa(rw.blocked)),
			p.text(strconv.Itoa(rw.restricted)), p.text(strconv.Itoa(rw.other)), p.text(strings.Join(rw.blockedAt, ", "))})
	}
	sec := &section{ID: "common-ground", Heading: p.t("common.most_approved"), Intro: p.t("common.intro", total), Table: t}
	if len(rows) > 0 {
		sec.Chart = p.approvalChart("common-chart", cat, total, rows[0].svc.Name, rows[0].approved, func(yield func(string, int) bool) {
			for _, rw := range rows {
				if !yield(rw.svc.Name, rw.approved) {
					return
				}
			}
		})
	}
	p.add(sec)

	// Agreements in this category, nearest to everyone first.
	at := p.newTable("common-agreements", "common.agreements_table", "service", "agreed_by#", "still_to_agree#")
	agreements := make([]whitelist.Agreement, 0)
	for _, a := range ix.doc.Agreements {
		if a.Category == cat {
			agreements = append(agreements, a)
		}
	}
	sort.SliceStable(agreements, func(i, j int) bool { return len(agreements[i].EndorsedBy) > len(agreements[j].EndorsedBy) })
	for _, a := range agreements {
		at.Rows = append(at.Rows, []cell{p.serviceCell(ix, a.Service), p.text(strconv.Itoa(len(a.EndorsedBy))), p.text(strconv.Itoa(total - len(a.EndorsedBy)))})
	}
	at.Empty = p.t("common.no_agreements")
	p.add(&section{ID: "common-agreements", Heading: p.t("common.agreements"), Intro: p.t("common.agreements_intro"), Table: at})

	f := &commonGroundForm{Category: cat}
	for _, c := range whitelist.Categories {
		f.Categories = append(f.Categories, option{c, p.t("category." + c)})
	}
	p.Form = f
	d.render(w, r, http.StatusOK, "common-ground", p)
}

// approvalChart draws one bar per tool: how many organisations approve it.
func (p *page) approvalChart(id, cat string, total int, topName string, top int, each func(func(string, int) bool)) *chart {
	const w, h, left, bottom, topPad = 640, 200, 40, 24, 10
	c := &chart{ID: id, Width: w, Height: h, BaseY: h - bottom, Title: p.t("common.chart_title", p.t("category."+cat))}
	var names []string
	var counts []int
	each(func(n string, v int) bool { names, counts = append(names, n), append(counts, v); return true })
	c.Desc = p.t("common.chart_desc", len(names), total, topName, top)
	max := total
	if max == 0 {
		max = 1
	}
	slot := float64(w-left) / float64(len(names))
	plot := float64(h - bottom - topPad)
	for i := range names {
		b := bar{X: float64(left) + float64(i)*slot + 1, W: slot - 2, Label: fmt.Sprintf("%s: %d/%d", names[i], counts[i], total)}
		b.H = plot * float64(counts[i]) / float64(max)
		b.Y = c.BaseY - b.H
		c.Bars = append(c.Bars, b)
	}
	c.Ticks = []tick{{X: 2, Y: topPad + 4, Label: strconv.Itoa(total)}, {X: 2, Y: c.BaseY, Label: "0"}}
	return c
}
