package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/detour-project/detour/server/aggregates"
)

// apiAggregates serves GET /api/v1/aggregates[?org=ID]: the same
// k-anonymous figures as the overview (and an organisation's detail), for a
// signed-in browser (session cookie) or a script holding an API token
// (Authorization: Bearer dtr_..., made by `admin api-token create`). A GET
// changes nothing, so it needs no CSRF token; the role rules are the pages'.
func (d *Dashboard) apiAggregates(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	fail := func(code int, msg string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	var u *User
	var err error
	mustChange := false
	if a := r.Header.Get("Authorization"); a != "" {
		tok, ok := strings.CutPrefix(a, "Bearer ")
		if !ok {
			fail(http.StatusUnauthorized, "authorization: want Bearer TOKEN")
			return
		}
		u, err = tokenUser(r.Context(), d.opt.DB, strings.TrimSpace(tok))
	} else {
		var s *session
		c, cerr := r.Cookie(sessionCookie)
		if cerr != nil {
			err = errNoUser
		} else if s, err = loadSession(r.Context(), d.opt.DB, c.Value); err == nil {
			// A browser still on its one-time password reads nothing.
			u, mustChange = s.user, s.user.MustChange
		}
	}
	if errors.Is(err, errNoUser) || mustChange {
		h.Set("WWW-Authenticate", `Bearer realm="detour"`)
		fail(http.StatusUnauthorized, "sign in or send an API token")
		return
	}
	if err != nil {
		d.opt.Log.Error("dashboard: api", "err", err)
		fail(http.StatusInternalServerError, "internal error")
		return
	}
	org := r.URL.Query().Get("org")
	if org != "" && !u.CanSeeOrg(org) {
		fail(http.StatusForbidden, "this account may not read that organisation")
		return
	}
	rep, err := aggregates.GetReport(r.Context(), d.opt.DB, d.opt.Privacy, d.opt.Now(), org)
	if err != nil {
		d.opt.Log.Error("dashboard: api", "err", err)
		fail(http.StatusInternalServerError, "internal error")
		return
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rep)
}
