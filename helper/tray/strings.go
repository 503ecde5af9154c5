package tray

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Catalog is the tray's strings in one language. Keys are English sentences'
// roles; values are format strings.
type Catalog map[string]string

var catalogs = map[string]Catalog{
	"en": {
		"title":           "Detour",
		"agent-down":      "Detour agent is not running",
		"hub-reachable":   "Hub: %s (reachable)",
		"hub-unreachable": "Hub: %s (not reachable)",
		"hub-connecting":  "Hub: %s (connecting…)",
		"hub-none":        "Hub: not set up",
		"wl-version":      "Whitelist: version %d, updated %s",
		"wl-stale":        "Whitelist: version %d, out of date (updated %s)",
		"wl-none":         "Whitelist: none yet",
		"reports-waiting": "Reports waiting: %d",
		"reports-none":    "No reports waiting",
		"reports-failed":  "Reports waiting: %d (%d failed)",
		"paused-until":    "Prompts paused until %s",
		"error":           "Could not do that: %s",
		"sync":            "Sync now",
		"report-auto":     "Report automatically",
		"managed":         "%s (set by your organisation)",
		"pause":           "Pause prompts for an hour",
		"resume":          "Resume prompts",
		"quit":            "Quit",
		"age-now":         "just now",
		"age-min":         "%d min ago",
		"age-hour":        "%d h ago",
		"age-day":         "%d days ago",
		"age-unknown":     "at an unknown time",
	},
	"cy": {
		"title":           "Detour",
		"agent-down":      "Nid yw asiant Detour yn rhedeg",
		"hub-reachable":   "Hwb: %s (ar gael)",
		"hub-unreachable": "Hwb: %s (dim ar gael)",
		"hub-connecting":  "Hwb: %s (yn cysylltu…)",
		"hub-none":        "Hwb: heb ei osod",
		"wl-version":      "Rhestr gymeradwy: fersiwn %d, diweddarwyd %s",
		"wl-stale":        "Rhestr gymeradwy: fersiwn %d, wedi dyddio (diweddarwyd %s)",
		"wl-none":         "Rhestr gymeradwy: dim eto",
		"reports-waiting": "Adroddiadau yn aros: %d",
		"reports-none":    "Dim adroddiadau yn aros",
		"reports-failed":  "Adroddiadau yn aros: %d (%d wedi methu)",
		"paused-until":    "Negeseuon wedi'u hoedi tan %s",
		"error":           "Methu gwneud hynny: %s",
		"sync":            "Cysoni nawr",
		"report-auto":     "Adrodd yn awtomatig",
		"managed":         "%s (wedi'i osod gan eich sefydliad)",
		"pause":           "Oedi negeseuon am awr",
		"resume":          "Ailddechrau negeseuon",
		"quit":            "Gadael",
		"age-now":         "newydd",
		"age-min":         "%d munud yn ôl",
		"age-hour":        "%d awr yn ôl",
		"age-day":         "%d diwrnod yn ôl",
		"age-unknown":     "ar amser anhysbys",
	},
}

// Languages lists the catalogs, for tests that check every key is in each.
func Languages() []string { return []string{"en", "cy"} }

// CatalogFor returns the catalog for a language tag ("cy", "cy_GB.UTF-8");
// anything that is not Welsh is English.
func CatalogFor(lang string) Catalog {
	if strings.HasPrefix(strings.ToLower(lang), "cy") {
		return catalogs["cy"]
	}
	return catalogs["en"]
}

// LangFromEnv picks the language the way gettext does: LC_ALL, then
// LC_MESSAGES, then LANG.
func LangFromEnv() string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "en"
}

// T formats the string under key.
func (c Catalog) T(key string, args ...any) string {
	f, ok := c[key]
	if !ok {
		f = catalogs["en"][key]
	}
	if len(args) == 0 {
		return f
	}
	return fmt.Sprintf(f, args...)
}

// age says how long ago t was, coarsely: a tray line is read at a glance.
func (c Catalog) age(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return c.T("age-unknown")
	}
	d := now.Sub(*t)
	switch {
	case d < time.Minute:
		return c.T("age-now")
	case d < time.Hour:
		return c.T("age-min", int(d/time.Minute))
	case d < 48*time.Hour:
		return c.T("age-hour", int(d/time.Hour))
	default:
		return c.T("age-day", int(d/(24*time.Hour)))
	}
}
