package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/detour-project/detour/server/catalog"
	"github.com/detour-project/detour/shared/whitelist"
)

// The catalog pages (sector admins): add and edit services. A save is an
// import of that one service, so it gets the same checks as `catalog
// import` (one host, one service; known category; an http(s) URL; the
// hub's text rule) and becomes a new signed version at once.

// catalogEditor is the part of the catalog (catalog.Catalog) these pages
// need beyond catalog.Service.
type catalogEditor interface {
	Import(ctx context.Context, b *catalog.Bundle, actor string) (int64, error)
}

func (d *Dashboard) editor() catalogEditor {
	e, _ := d.opt.Catalog().(catalogEditor)
	return e
}

type serviceForm struct {
	New                             bool
	ID, Name, Vendor, Category, URL string
	Hosts, Features                 string // one a line
	Categories                      []option
}

func (d *Dashboard) catalogPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.showCatalog(w, r, s, http.StatusOK, "", "", &serviceForm{New: true})
}

func (d *Dashboard) showCatalog(w http.ResponseWriter, r *http.Request, s *session, code int, errKey, notice string, f *serviceForm) {
	if d.editor() == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	ix := d.index()
	p := d.newPage(r, s, "catalog.title")
	p.Error, p.Notice = errKey, notice
	t := p.newTable("services", "catalog.services", "service", "vendor", "category", "hosts", "url")
	for _, sv := range ix.doc.Services {
		t.Rows = append(t.Rows, []cell{p.link(sv.Name, "/catalog/"+url.PathEscape(sv.ID)), p.text(sv.Vendor),
			p.text(p.t("category." + sv.Category)), p.text(strings.Join(sv.Hosts, ", ")), p.text(sv.URL)})
	}
	p.add(&section{ID: "services", Heading: p.t("catalog.services"), Intro: p.t("catalog.intro", ix.doc.Version), Table: t})
	d.renderServiceForm(w, r, code, p, f)
}

func (d *Dashboard) renderServiceForm(w http.ResponseWriter, r *http.Request, code int, p *page, f *serviceForm) {
	f.Categories = nil
	for _, c := range whitelist.Categories {
		f.Categories = append(f.Categories, option{c, p.t("category." + c)})
	}
	p.Form = f
	d.render(w, r, code, "catalog", p)
}

func (d *Dashboard) serviceEdit(w http.ResponseWriter, r *http.Request, s *session) {
	if d.editor() == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	sv := d.index().services[r.PathValue("id")]
	if sv == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	p := d.newPage(r, s, "catalog.edit_title")
	p.TitleArg = sv.Name
	d.renderServiceForm(w, r, http.StatusOK, p, &serviceForm{ID: sv.ID, Name: sv.Name, Vendor: sv.Vendor, Category: sv.Category,
		URL: sv.URL, Hosts: strings.Join(sv.Hosts, "\n"), Features: strings.Join(sv.Features, "\n")})
}

// lines splits a textarea into its non-empty lines (commas also separate).
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// catalogErrorKey names a catalog refusal in the person's language.
func catalogErrorKey(err error) string {
	m := err.Error()
	for _, k := range []struct{ sub, key string }{
		{"is claimed by both", "catalog.host_claimed"},
		{"is not a host name", "catalog.bad_host"},
		{"lists host", "catalog.host_twice"},
		{"has no hosts", "catalog.no_hosts"},
		{"unknown category", "catalog.bad_category"},
		{"url", "catalog.bad_url"},
		{"name", "catalog.bad_name"},
		{"id", "catalog.bad_id"},
	} {
		if strings.Contains(m, k.sub) {
			return k.key
		}
	}
	return "catalog.invalid"
}

// serviceSave adds a service (POST /catalog) or replaces one (POST
// /catalog/{id}), as a one-service import.
func (d *Dashboard) serviceSave(w http.ResponseWriter, r *http.Request, s *session) {
	ed := d.editor()
	if ed == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	ix := d.index()
	f := &serviceForm{ID: strings.TrimSpace(r.PostFormValue("id")), Name: r.PostFormValue("name"), Vendor: r.PostFormValue("vendor"),
		Category: r.PostFormValue("category"), URL: strings.TrimSpace(r.PostFormValue("url")),
		Hosts: r.PostFormValue("hosts"), Features: r.PostFormValue("features")}
	if id := r.PathValue("id"); id != "" {
		if ix.services[id] == nil {
			d.status(w, r, s, http.StatusNotFound, "error.not_found")
			return
		}
		f.ID = id
	} else {
		f.New = true
		if ix.services[f.ID] != nil {
			d.showCatalog(w, r, s, http.StatusConflict, "catalog.exists", "", f)
			return
		}
	}
	sv := whitelist.Service{ID: f.ID, Name: strings.TrimSpace(f.Name), Vendor: strings.TrimSpace(f.Vendor), Category: f.Category,
		Hosts: lines(f.Hosts), URL: f.URL, Features: lines(f.Features)}
	v, err := ed.Import(r.Context(), &catalog.Bundle{Services: []whitelist.Service{sv}}, s.user.Email)
	if errors.Is(err, catalog.ErrInvalid) {
		key := catalogErrorKey(err)
		d.opt.Log.Info("dashboard: catalog edit refused", "service", f.ID, "err", err)
		if f.New {
			d.showCatalog(w, r, s, http.StatusBadRequest, key, "", f)
			return
		}
		p := d.newPage(r, s, "catalog.edit_title")
		p.TitleArg, p.Error = ix.serviceName(f.ID), key
		d.renderServiceForm(w, r, http.StatusBadRequest, p, f)
		return
	}
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	d.showCatalog(w, r, s, http.StatusOK, "", tr(langOf(r), "catalog.saved", sv.Name, v), &serviceForm{New: true})
}
