package dashboard

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/detour-project/detour/server/aggregates"
)

//go:embed i18n/*.json
var i18nFS embed.FS

// Langs are the dashboard's languages; the first is the default.
var Langs = []string{"en", "cy"}

// messages holds every string a person reads, per language, from
// i18n/en.json and i18n/cy.json. Both must have the same keys (tested).
var messages = func() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, l := range Langs {
		b, err := i18nFS.ReadFile("i18n/" + l + ".json")
		if err != nil {
			panic(err)
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("dashboard: i18n/%s.json: %v", l, err))
		}
		out[l] = m
	}
	return out
}()

// tr translates key into lang, formatting args with fmt's verbs. A missing
// key shows as itself, so it is visible rather than blank.
func tr(lang, key string, args ...any) string {
	m, ok := messages[lang][key]
	if !ok {
		m, ok = messages["en"][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(m, args...)
	}
	return m
}

// countText renders a count: a number or "fewer than k" in lang.
func countText(lang string, c aggregates.Count) string {
	if c.Suppressed {
		return tr(lang, "count.fewer", c.K())
	}
	return strconv.FormatInt(c.Int(), 10)
}

// langOf picks the language: ?lang= (remembered in a cookie), the cookie,
// then English.
func langOf(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); valid(l) {
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && valid(c.Value) {
		return c.Value
	}
	return Langs[0]
}

func valid(l string) bool {
	for _, x := range Langs {
		if x == l {
			return true
		}
	}
	return false
}
