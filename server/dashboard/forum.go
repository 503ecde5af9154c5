package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/detour-project/detour/server/store"
)

// The closed forum: a discussion thread per agreement and per service among
// the filtering owners (organisation and sector admins) of the member
// organisations. Never published, never shown to viewers; each post names
// the poster's organisation; every post is audited. Posted text has passed
// the hub's text rule (checkForm) and is shown only through html/template.

// forumMigrations are the forum's own tables, migrated under their own name
// so that they never compete with the dashboard's version numbers.
var forumMigrations = []store.Step{{Version: 1, SQL: `
CREATE TABLE forum_posts (
	id TEXT PRIMARY KEY,
	thread TEXT NOT NULL,
	at TEXT NOT NULL,
	author TEXT NOT NULL,
	org TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX forum_posts_thread ON forum_posts (thread, id);`}}

// Thread keys.
const (
	threadAgreement = "agreement:"
	threadService   = "service:"
)

// maxPost bounds a post, in characters.
const maxPost = 4000

type post struct {
	ID, Thread, At, Author, Org, Body string
}

func (d *Dashboard) addPost(ctx context.Context, thread string, u *User, body string) error {
	if _, err := d.opt.DB.ExecContext(ctx, `INSERT INTO forum_posts (id, thread, at, author, org, body) VALUES (?, ?, ?, ?, ?, ?)`,
		newID(), thread, now(), u.Email, u.Org, body); err != nil {
		return fmt.Errorf("dashboard: forum post: %w", err)
	}
	d.audit(ctx, u.Email, u.Org, "forum-post", thread, "")
	return nil
}

func (d *Dashboard) posts(ctx context.Context, thread string) ([]post, error) {
	rows, err := d.opt.DB.QueryContext(ctx, `SELECT id, thread, at, author, org, body FROM forum_posts WHERE thread = ? ORDER BY id`, thread)
	if err != nil {
		return nil, fmt.Errorf("dashboard: forum: %w", err)
	}
	defer rows.Close()
	var out []post
	for rows.Next() {
		var p post
		if err := rows.Scan(&p.ID, &p.Thread, &p.At, &p.Author, &p.Org, &p.Body); err != nil {
			return nil, fmt.Errorf("dashboard: forum: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// posterOrg names the poster's organisation; a sector admin belongs to none.
func (p *page) posterOrg(ix *index, org string) string {
	if org == "" {
		return p.t("forum.sector")
	}
	return ix.orgName(org)
}

// addThread adds a thread's posts to a page as a table.
func (d *Dashboard) addThread(r *http.Request, p *page, s *session, thread string) {
	ix := d.index()
	t := p.newTable("posts", "forum.posts_table", "when", "organisation", "who", "post")
	posts, err := d.posts(r.Context(), thread)
	if err != nil {
		d.opt.Log.Error("dashboard: forum", "err", err)
	}
	for _, po := range posts {
		t.Rows = append(t.Rows, []cell{p.text(po.At), p.text(p.posterOrg(ix, po.Org)), p.text(po.Author), p.text(po.Body)})
	}
	t.Empty = p.t("forum.empty")
	if r.URL.Query().Get("posted") == "1" {
		p.Notice = p.t("forum.posted")
	}
	p.add(&section{ID: "posts", Heading: p.t("forum.posts"), Intro: p.t("forum.private"), Table: t})
}

type forumForm struct {
	Services []option
	Thread   string
	Body     string
}

// forumPage lists the threads that have posts, and lets an owner open the
// thread of any service.
func (d *Dashboard) forumPage(w http.ResponseWriter, r *http.Request, s *session) {
	ix := d.index()
	p := d.newPage(r, s, "forum.title")
	rows, err := d.opt.DB.QueryContext(r.Context(), `SELECT thread, COUNT(*), MAX(at) FROM forum_posts GROUP BY thread ORDER BY MAX(at) DESC`)
	if err != nil {
		d.fail(w, r, s, err)
		return
	}
	t := p.newTable("threads", "forum.threads_table", "thread", "posts#", "last_post")
	for rows.Next() {
		var thread, last string
		var n int
		if err := rows.Scan(&thread, &n, &last); err != nil {
			rows.Close()
			d.fail(w, r, s, err)
			return
		}
		var c cell
		switch {
		case strings.HasPrefix(thread, threadAgreement):
			id := strings.TrimPrefix(thread, threadAgreement)
			c = p.link(p.t("forum.agreement_thread", ix.serviceName(id)), "/agreements/"+url.PathEscape(id)+"#posts")
		case strings.HasPrefix(thread, threadService):
			id := strings.TrimPrefix(thread, threadService)
			c = p.link(ix.serviceName(id), "/forum/services/"+url.PathEscape(id))
		default:
			continue
		}
		t.Rows = append(t.Rows, []cell{c, p.text(strconv.Itoa(n)), p.text(last)})
	}
	rows.Close()
	t.Empty = p.t("forum.no_threads")
	p.add(&section{ID: "threads", Heading: p.t("forum.threads"), Intro: p.t("forum.intro"), Table: t})
	f := &forumForm{}
	for _, svc := range ix.doc.Services {
		f.Services = append(f.Services, option{svc.ID, svc.Name})
	}
	p.Form = f
	d.render(w, r, http.StatusOK, "forum", p)
}

func (d *Dashboard) serviceThread(w http.ResponseWriter, r *http.Request, s *session) {
	d.showServiceThread(w, r, s, http.StatusOK, "", "")
}

func (d *Dashboard) showServiceThread(w http.ResponseWriter, r *http.Request, s *session, code int, errKey, body string) {
	ix := d.index()
	id := r.PathValue("id")
	if id == "" {
		id = r.URL.Query().Get("service")
	}
	if ix.services[id] == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	p := d.newPage(r, s, "forum.service_title")
	p.TitleArg, p.Error = ix.serviceName(id), errKey
	d.addThread(r, p, s, threadService+id)
	p.Form = &forumForm{Thread: "/forum/services/" + url.PathEscape(id) + "/posts", Body: body}
	d.render(w, r, code, "thread", p)
}

func (d *Dashboard) postServiceThread(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if d.index().services[id] == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	body := strings.TrimSpace(r.PostFormValue("body"))
	if !validPost(body) {
		d.showServiceThread(w, r, s, http.StatusBadRequest, "forum.bad_post", body)
		return
	}
	if err := d.addPost(r.Context(), threadService+id, s.user, body); err != nil {
		d.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/forum/services/"+url.PathEscape(id)+"?posted=1#posts", http.StatusSeeOther)
}

// openServiceThread is the forum page's "open a service's thread" form.
func (d *Dashboard) openServiceThread(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.URL.Query().Get("service")
	if d.index().services[id] == nil {
		d.status(w, r, s, http.StatusNotFound, "error.not_found")
		return
	}
	http.Redirect(w, r, "/forum/services/"+url.PathEscape(id), http.StatusSeeOther)
}
