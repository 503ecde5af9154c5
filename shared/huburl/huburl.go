// Package huburl is the one rule for a hub's base URL, wherever one comes
// from: `detour agent --hub`, `detour enrol --hub`, the organisation's
// managed policy, the hub's own --public-url. Before it, three copies in the
// helper accepted different URLs, so a policy could name a hub that
// enrolment then refused.
package huburl

import (
	"fmt"
	"net/url"
	"strings"
)

// Parse checks raw and returns it in the form every request is built on:
// an absolute http or https URL with a host, an optional port and path, no
// user information, query or fragment, and no trailing slash.
func Parse(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return "", fmt.Errorf("hub URL %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("hub URL %q: want http:// or https:// (e.g. https://hub.example.org)", raw)
	case u.Hostname() == "":
		return "", fmt.Errorf("hub URL %q has no host (e.g. https://hub.example.org)", raw)
	case u.User != nil:
		return "", fmt.Errorf("hub URL %q: a user name or password does not belong in it", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("hub URL %q: want no ?query or #fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
