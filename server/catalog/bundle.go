package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"github.com/detour-project/detour/server/text"
	"github.com/detour-project/detour/shared/whitelist"
)

// Bundle is the JSON that `catalog import` reads and `catalog export`
// writes, and the shape of the seed files in shared/catalog: every part is
// optional, so a file may carry only services, or only organisations and
// their policies.
type Bundle struct {
	Categories    []string                 `json:"categories,omitempty"`
	Services      []whitelist.Service      `json:"services,omitempty"`
	Organisations []whitelist.Organisation `json:"organisations,omitempty"`
	Policies      []whitelist.Policy       `json:"policies,omitempty"`
}

// ErrInvalid marks input the catalog refuses; nothing is written when it is
// returned. Callers test it with errors.Is.
var ErrInvalid = errors.New("catalog: invalid input")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ParseBundle reads an import file. Unknown top-level keys are refused (a
// misspelt "organisations" must not import nothing in silence), except keys
// starting with "$" or "_", which are left for schema references and
// comments. Unknown keys inside a service, organisation or policy are refused
// for the same reason.
func ParseBundle(r io.Reader) (*Bundle, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("catalog: read import: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, invalid("not a JSON object: %v", err)
	}
	var b Bundle
	for k, v := range top {
		var dst any
		switch k {
		case "categories":
			dst = &b.Categories
		case "services":
			dst = &b.Services
		case "organisations":
			dst = &b.Organisations
		case "policies":
			dst = &b.Policies
		default:
			if strings.HasPrefix(k, "$") || strings.HasPrefix(k, "_") {
				continue
			}
			return nil, invalid("unknown key %q (want categories, services, organisations, policies)", k)
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return nil, invalid("%s: %v", k, err)
		}
	}
	return &b, nil
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// hostPattern accepts DNS names as a catalog lists them: labels of letters,
// digits and hyphens, at least two labels, no scheme, port or path.
var hostPattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// checkText refuses what either engine cannot store or a reader cannot
// trust (server/text: invalid UTF-8, NUL, other control characters except
// newline and tab in notes), blank required values and oversize ones.
func checkText(field, s string, max int, required, multiline bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid("%s is empty", field)
	}
	if len(s) > max {
		return invalid("%s is %d bytes, at most %d", field, len(s), max)
	}
	if err := text.Check(field, s, multiline); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func checkID(kind, id string) error {
	if !idPattern.MatchString(id) {
		return invalid("%s id %q: use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", kind, id)
	}
	return nil
}

func normaliseHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// checkService checks one service on its own and normalises its hosts;
// cross-service rules (unique ids and hosts) are the document's.
func checkService(s *whitelist.Service) error {
	if err := checkID("service", s.ID); err != nil {
		return err
	}
	if err := checkText("service "+s.ID+" name", s.Name, 200, true, false); err != nil {
		return err
	}
	if err := checkText("service "+s.ID+" vendor", s.Vendor, 200, false, false); err != nil {
		return err
	}
	if !knownCategory(s.Category) {
		return invalid("service %q: unknown category %q (want one of %s)", s.ID, s.Category, strings.Join(whitelist.Categories, ", "))
	}
	if len(s.Hosts) == 0 {
		return invalid("service %q has no hosts", s.ID)
	}
	seen := map[string]bool{}
	for i, h := range s.Hosts {
		n := normaliseHost(h)
		if !hostPattern.MatchString(n) || len(n) > 253 {
			return invalid("service %q: host %q is not a host name", s.ID, h)
		}
		if seen[n] {
			return invalid("service %q lists host %q twice", s.ID, n)
		}
		seen[n] = true
		s.Hosts[i] = n
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid("service %q: url %q is not an http(s) URL", s.ID, s.URL)
	}
	if err := checkText("service "+s.ID+" url", s.URL, 2000, true, false); err != nil {
		return err
	}
	if s.Features == nil {
		s.Features = []string{}
	}
	for _, f := range s.Features {
		if err := checkText("service "+s.ID+" feature", f, 100, true, false); err != nil {
			return err
		}
	}
	return nil
}

func checkOrganisation(o *whitelist.Organisation) error {
	if err := checkID("organisation", o.ID); err != nil {
		return err
	}
	if err := checkText("organisation "+o.ID+" name", o.Name, 200, true, false); err != nil {
		return err
	}
	return checkText("organisation "+o.ID+" sector", o.Sector, 100, false, false)
}

// checkPolicy checks a policy against the services and organisations that
// will exist once the change is made.
func checkPolicy(p *whitelist.Policy, services, orgs map[string]bool) error {
	if !orgs[p.Org] {
		return invalid("policy %s/%s: unknown organisation %q", p.Org, p.Service, p.Org)
	}
	if !services[p.Service] {
		return invalid("policy %s/%s: unknown service %q", p.Org, p.Service, p.Service)
	}
	switch p.Status {
	case whitelist.Approved, whitelist.Blocked, whitelist.Restricted, whitelist.Unknown:
	default:
		return invalid("policy %s/%s: status %q (want approved, blocked, restricted or unknown)", p.Org, p.Service, p.Status)
	}
	if p.Alternatives == nil {
		p.Alternatives = []string{}
	}
	seen := map[string]bool{}
	for _, a := range p.Alternatives {
		if !services[a] {
			return invalid("policy %s/%s: unknown alternative %q", p.Org, p.Service, a)
		}
		if a == p.Service {
			return invalid("policy %s/%s: a service cannot be its own alternative", p.Org, p.Service)
		}
		if seen[a] {
			return invalid("policy %s/%s: alternative %q listed twice", p.Org, p.Service, a)
		}
		seen[a] = true
	}
	return checkText("policy "+p.Org+"/"+p.Service+" note", p.Note, 2000, false, true)
}

func knownCategory(c string) bool {
	for _, k := range whitelist.Categories {
		if k == c {
			return true
		}
	}
	return false
}
