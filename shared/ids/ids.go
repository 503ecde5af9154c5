// Package ids holds the fixed names that the browser, the installer and the
// helper must agree on: the native-messaging host name and the extension IDs
// the native host admits.
//
// There is one list (Extensions) because the same extension reaches people
// through several channels, each with its own ID: the development build
// (pinned by the public key in extension/manifest.base.json, "key"), the
// Chrome Web Store and Edge Add-ons (which assign their own IDs on first
// publication and refuse a "key"), addons.mozilla.org (which keeps the gecko
// id the manifest declares) and an organisation's self-hosted CRX (whose ID
// comes from the organisation's own signing key). Every native-messaging
// manifest the installer writes, the relay's caller check and the policy
// templates in installer/policy name exactly these IDs.
//
// The store IDs are only known once the extension is published, and a
// self-hosted ID only to its organisation, so the list is extended at build
// time: DETOUR_EXTENSION_IDS (read by the Makefile) is passed as
//
//	go build -ldflags "-X github.com/detour-project/detour/shared/ids.Build=chrome-web-store=ID,edge-add-ons=ID"
//
// with entries "channel=id" or a bare id (the family is told from its shape).
package ids

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// NativeHost is the native-messaging host name registered with every browser.
const NativeHost = "org.detour.helper"

// ChromeExtensionID is the development ID, derived from the "key" in
// extension/manifest.base.json: the unpacked build in extension/dist/chrome.
const ChromeExtensionID = "namjglpjppneocddaipepcedcopfegan"

// FirefoxExtensionID is browser_specific_settings.gecko.id in every Firefox
// build; addons.mozilla.org keeps it, so it is also the AMO ID.
const FirefoxExtensionID = "detour@detour-project.org"

// Channels an extension ID belongs to.
const (
	Development    = "development"
	ChromeWebStore = "chrome-web-store"
	EdgeAddons     = "edge-add-ons"
	AMO            = "amo"
	SelfHosted     = "self-hosted"
)

// Channels lists every channel name Build may use, in the order Extensions
// returns them.
var Channels = []string{Development, ChromeWebStore, EdgeAddons, AMO, SelfHosted}

// Extension is one ID the native host admits.
type Extension struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	// Firefox is true for a gecko id (allowed_extensions), false for a
	// Chrome-family ID (allowed_origins chrome-extension://ID/).
	Firefox bool `json:"firefox"`
}

// Build extends the default list at build time (see the package comment);
// empty in a plain `go build`.
var Build string

// Defaults are the IDs known before any publication.
var Defaults = []Extension{
	{ID: ChromeExtensionID, Channel: Development},
	{ID: FirefoxExtensionID, Channel: AMO, Firefox: true},
}

var (
	chromeIDRe  = regexp.MustCompile(`^[a-p]{32}$`)
	geckoIDRe   = regexp.MustCompile(`^(\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|[A-Za-z0-9._+-]*@[A-Za-z0-9._-]+)$`)
	errNoFamily = errors.New("is neither a Chrome-family ID (32 letters a–p) nor a Firefox id (name@domain or {GUID})")
)

// Parse reads a DETOUR_EXTENSION_IDS value: comma-separated entries, each
// "channel=id" or a bare id (channel self-hosted). Blank entries are
// ignored. A Chrome Web Store, Edge or development entry must be a
// Chrome-family ID and an AMO entry a gecko id.
func Parse(s string) ([]Extension, error) {
	var out []Extension
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ch, id, ok := strings.Cut(f, "=")
		if !ok {
			ch, id = SelfHosted, f
		}
		ch, id = strings.TrimSpace(ch), strings.TrimSpace(id)
		if !slices.Contains(Channels, ch) {
			return nil, fmt.Errorf("extension IDs: %q: unknown channel %q (known: %s)", f, ch, strings.Join(Channels, ", "))
		}
		e := Extension{ID: id, Channel: ch}
		switch {
		case chromeIDRe.MatchString(id):
		case geckoIDRe.MatchString(id):
			e.Firefox = true
		default:
			return nil, fmt.Errorf("extension IDs: %q %w", id, errNoFamily)
		}
		if e.Firefox && (ch == ChromeWebStore || ch == EdgeAddons || ch == Development) {
			return nil, fmt.Errorf("extension IDs: %q: a %s ID must be 32 letters a–p", f, ch)
		}
		if !e.Firefox && ch == AMO {
			return nil, fmt.Errorf("extension IDs: %q: an AMO ID is a gecko id (name@domain or {GUID})", f)
		}
		out = append(out, e)
	}
	return out, nil
}

// Extensions returns the defaults followed by Build's entries, without
// duplicates. A malformed Build is a build error that Check reports (the
// Makefile runs it); here its bad entries are left out, so a broken build
// admits fewer callers, never more.
func Extensions() []Extension {
	out := slices.Clone(Defaults)
	extra, err := Parse(Build)
	if err != nil {
		extra = nil
		for _, f := range strings.Split(Build, ",") {
			if e, err := Parse(f); err == nil {
				extra = append(extra, e...)
			}
		}
	}
	for _, e := range extra {
		if !slices.ContainsFunc(out, func(o Extension) bool { return o.ID == e.ID }) {
			out = append(out, e)
		}
	}
	return out
}

// Check reports whether Build is well formed.
func Check() error {
	_, err := Parse(Build)
	return err
}

// ChromeIDs are the Chrome-family IDs admitted, in list order.
func ChromeIDs() []string { return pick(false) }

// FirefoxIDs are the gecko ids admitted, in list order.
func FirefoxIDs() []string { return pick(true) }

// All is every admitted ID.
func All() []string {
	var out []string
	for _, e := range Extensions() {
		out = append(out, e.ID)
	}
	return out
}

// ByChannel returns the ID for a channel, or "" when it has none (e.g. a
// store that has not published Detour yet).
func ByChannel(ch string) string {
	for _, e := range Extensions() {
		if e.Channel == ch {
			return e.ID
		}
	}
	return ""
}

func pick(firefox bool) []string {
	var out []string
	for _, e := range Extensions() {
		if e.Firefox == firefox {
			out = append(out, e.ID)
		}
	}
	return out
}

// ChromeOrigin is how a Chrome-family browser names the caller on the relay's
// command line.
func ChromeOrigin(id string) string { return "chrome-extension://" + id + "/" }

// ChromeOrigins are the allowed_origins of a Chrome-family manifest.
func ChromeOrigins() []string {
	var out []string
	for _, id := range ChromeIDs() {
		out = append(out, ChromeOrigin(id))
	}
	return out
}
