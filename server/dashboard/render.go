package dashboard

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/detour-project/detour/server/aggregates"
)

// page is what every template receives.
type page struct {
	Lang     string
	TitleKey string
	TitleArg string // a name to put in the title (a service, an organisation)
	User     *User
	CSRF     string
	Path     string
	Query    url.Values
	Error    string // an i18n key
	Notice   string // translated
	Email    string // sign-in form's echo
	HasGovUK bool
	Nav      []navItem
	Sections []*section
	Form     any   // page-specific form data
	K        int64 // the k-anonymity threshold, for "fewer than k"
}

type navItem struct {
	Href, Key string
	Current   bool
}

// section is a heading with a chart, a table and text, any of them optional.
type section struct {
	ID      string
	Heading string // translated
	Intro   string // translated
	Big     *cell  // a headline figure
	Fewer   string // set on the live "blocks this week" figure: its "fewer than k" text
	Chart   *chart
	Table   *table
}

// table is data first: pages build it, the template renders it, and the
// export writes the same rows as CSV or JSON.
type table struct {
	ID      string
	Caption string
	Cols    []string // stable column keys (JSON export)
	Head    []string // translated headings
	Num     []bool   // numeric columns, right-aligned
	Rows    [][]cell
	Empty   string // translated text when there are no rows
	CSV     string // export links
	JSON    string
}

type cell struct {
	Text  string
	Href  string
	Count *aggregates.Count
	Tag   string // a status, shown as a tag (class detour-tag--STATUS)
	Lang  string
}

func (c cell) String() string {
	if c.Count != nil {
		return countText(c.Lang, *c.Count)
	}
	return c.Text
}

func (d *Dashboard) newPage(r *http.Request, s *session, titleKey string) *page {
	p := &page{Lang: langOf(r), TitleKey: titleKey, Path: r.URL.Path, Query: r.URL.Query(), K: d.opt.Privacy.Count(1).K()}
	if _, err := fs.Stat(d.assets, "govuk/govuk.css"); err == nil {
		p.HasGovUK = true
	}
	if s != nil {
		p.User, p.CSRF = s.user, s.csrf
		if !s.user.MustChange {
			p.Nav = d.nav(r, s.user)
		}
	}
	return p
}

func (d *Dashboard) nav(r *http.Request, u *User) []navItem {
	items := []navItem{{Href: "/", Key: "nav.overview"}}
	if u.Role == RoleSectorAdmin || (u.Role == RoleViewer && u.Org == "") {
		items = append(items, navItem{Href: "/orgs", Key: "nav.orgs"})
	} else {
		items = append(items, navItem{Href: "/orgs/" + url.PathEscape(u.Org), Key: "nav.my_org"})
	}
	items = append(items, navItem{Href: "/matrix", Key: "nav.matrix"}, navItem{Href: "/common-ground", Key: "nav.common"}, navItem{Href: "/review", Key: "nav.review"})
	if u.Role == RoleSectorAdmin {
		items = append(items, navItem{Href: "/contacts", Key: "nav.contacts"})
	}
	if admins(u, r) {
		items = append(items, navItem{Href: "/people", Key: "nav.people"})
	}
	if d.opt.Codes != nil && admins(u, r) {
		items = append(items, navItem{Href: "/codes", Key: "nav.codes"})
	}
	if owners(u, r) && d.agreementStore() != nil {
		items = append(items, navItem{Href: "/agreements", Key: "nav.agreements"}, navItem{Href: "/forum", Key: "nav.forum"})
	}
	if owners(u, r) {
		items = append(items, navItem{Href: "/directory", Key: "nav.directory"})
	}
	if admins(u, r) {
		items = append(items, navItem{Href: "/tokens", Key: "nav.tokens"})
	}
	if u.Role == RoleSectorAdmin && d.editor() != nil {
		items = append(items, navItem{Href: "/catalog", Key: "nav.catalog"})
	}
	items = append(items, navItem{Href: "/audit", Key: "nav.audit"})
	if u.Local {
		items = append(items, navItem{Href: "/account/totp", Key: "nav.security"})
	}
	for i := range items {
		items[i].Current = r.URL.Path == items[i].Href || (items[i].Href != "/" && strings.HasPrefix(r.URL.Path, items[i].Href+"/"))
	}
	return items
}

// newTable starts a table whose columns are given as key pairs: the stable
// column key and its heading's i18n key. A key ending in "#" is numeric.
func (p *page) newTable(id, captionKey string, cols ...string) *table {
	t := &table{ID: id, Caption: tr(p.Lang, captionKey), Empty: tr(p.Lang, "table.empty")}
	for _, c := range cols {
		num := strings.HasSuffix(c, "#")
		c = strings.TrimSuffix(c, "#")
		t.Cols = append(t.Cols, c)
		t.Head = append(t.Head, tr(p.Lang, "col."+c))
		t.Num = append(t.Num, num)
	}
	q := url.Values{}
	for k, v := range p.Query {
		if k != "export" && k != "format" && k != "lang" {
			q[k] = v
		}
	}
	q.Set("export", id)
	q.Set("format", "csv")
	t.CSV = p.Path + "?" + q.Encode()
	q.Set("format", "json")
	t.JSON = p.Path + "?" + q.Encode()
	return t
}

func (p *page) text(s string) cell            { return cell{Text: s, Lang: p.Lang} }
func (p *page) link(s, href string) cell      { return cell{Text: s, Href: href, Lang: p.Lang} }
func (p *page) count(c aggregates.Count) cell { return cell{Count: &c, Lang: p.Lang} }
func (p *page) tag(status, key string) cell {
	return cell{Text: tr(p.Lang, key), Tag: status, Lang: p.Lang}
}
func (p *page) add(s *section) *section          { p.Sections = append(p.Sections, s); return s }
func (p *page) t(key string, args ...any) string { return tr(p.Lang, key, args...) }

// render writes a page, or the table named by ?export= as CSV or JSON.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	if id := r.URL.Query().Get("export"); id != "" && code == http.StatusOK {
		for _, s := range p.Sections {
			if s.Table != nil && s.Table.ID == id {
				d.export(w, r, s.Table)
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		d.opt.Log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// csvSafe stops a spreadsheet from running a cell as a formula (OWASP's
// "CSV injection"): a cell whose first character, or first after leading
// spaces, starts a formula in Excel, LibreOffice or Sheets gets a leading
// apostrophe. Every cell goes through it, the header row included, since
// headers can carry names that came from outside (organisations, services).
func csvSafe(s string) string {
	t := strings.TrimLeft(s, " ")
	if t != "" && strings.ContainsRune("=+-@\t\r\n|%＝＋－＠", []rune(t)[0]) {
		return "'" + s
	}
	return s
}

func (d *Dashboard) export(w http.ResponseWriter, r *http.Request, t *table) {
	name := t.ID
	switch r.URL.Query().Get("format") {
	case "json":
		rows := make([]map[string]any, 0, len(t.Rows))
		for _, row := range t.Rows {
			m := map[string]any{}
			for i, c := range row {
				if c.Count != nil {
					m[t.Cols[i]] = c.Count
				} else {
					m[t.Cols[i]] = c.Text
				}
			}
			rows = append(rows, m)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.json"`, name))
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"table": t.ID, "caption": t.Caption, "k": d.opt.Privacy.K, "columns": t.Cols, "rows": rows})
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.csv"`, name))
		cw := csv.NewWriter(w)
		head := make([]string, len(t.Head))
		for i, h := range t.Head {
			head[i] = csvSafe(h)
		}
		cw.Write(head)
		for _, row := range t.Rows {
			rec := make([]string, len(row))
			for i, c := range row {
				rec[i] = csvSafe(c.String())
			}
			cw.Write(rec)
		}
		cw.Flush()
	default:
		http.Error(w, "format: want csv or json", http.StatusBadRequest)
	}
}

// tagClasses colour statuses; the text always says the status too.
var tagClasses = map[string]string{
	"approved": "govuk-tag--green", "blocked": "govuk-tag--red", "restricted": "govuk-tag--yellow",
	"unknown": "govuk-tag--grey", "new": "govuk-tag--blue", "under-review": "govuk-tag--yellow", "kept-blocked": "govuk-tag--red",
	"active": "govuk-tag--green", "revoked": "govuk-tag--grey", "expired": "govuk-tag--grey", "full": "govuk-tag--blue", "unusual": "govuk-tag--red",
	"endorsed": "govuk-tag--green", "declined": "govuk-tag--red",
}

var funcs = template.FuncMap{
	"t": func(lang, key string, args ...any) string { return tr(lang, key, args...) },
	"langHref": func(p *page, lang string) string {
		q := url.Values{}
		for k, v := range p.Query {
			q[k] = v
		}
		q.Set("lang", lang)
		return p.Path + "?" + q.Encode()
	},
	"tagClass":    func(status string) string { return tagClasses[status] },
	"minPassword": func() int { return MinPassword },
	"otherLang": func(lang string) string {
		if lang == "cy" {
			return "en"
		}
		return "cy"
	},
}
