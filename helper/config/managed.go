package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/detour-project/detour/shared/huburl"
	"github.com/detour-project/detour/shared/whitelist"
)

// Managed is the helper's managed policy. Every field is optional; a field
// that is set wins over the person's own setting and is listed in
// Config.Managed so that the tray and the extension show it as fixed.
type Managed struct {
	Hub                 string                `json:"hub,omitempty"`
	WhitelistKeys       []whitelist.PublicKey `json:"whitelist_keys,omitempty"`
	Org                 string                `json:"org,omitempty"`
	ReportAutomatically *bool                 `json:"report_automatically,omitempty"`
	// EnrolmentCode lets the agent enrol without the person typing a code.
	// It is not a secret worth much: it only admits a device to the org.
	EnrolmentCode string `json:"enrolment_code,omitempty"`
	// Prompts, when set, turns the prompt shown on a block on or off for
	// everyone (off: Detour still notices and reports as configured).
	Prompts *bool `json:"prompts,omitempty"`
}

// readPlatformManaged, when set (Windows: the registry), replaces the file
// that ReadManaged reads.
var readPlatformManaged func() (*Managed, error)

// ReadManaged reads root+ManagedPath ("" root is /). No file is no policy:
// (nil, nil). A file that is there but wrong is an error, never ignored, so
// that a typo in a policy does not silently leave people unmanaged.
func ReadManaged(root string) (*Managed, error) {
	if readPlatformManaged != nil {
		return readPlatformManaged()
	}
	if root == "" {
		root = "/"
	}
	path := filepath.Join(root, ManagedPath)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("managed policy: %w", err)
	}
	m, err := parseManagedFile(b)
	if err != nil {
		return nil, fmt.Errorf("managed policy %s: %w", path, err)
	}
	return m, nil
}

// ParseManaged decodes and checks a managed policy document.
func ParseManaged(b []byte) (*Managed, error) {
	var m Managed
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not valid: %w", err)
	}
	if m.Hub != "" {
		u, err := huburl.Parse(m.Hub)
		if err != nil {
			return nil, err
		}
		m.Hub = u
	}
	for _, k := range m.WhitelistKeys {
		if _, err := whitelist.ParsePublicKey(k); err != nil {
			return nil, fmt.Errorf("whitelist key %q: %w", k.KeyID, err)
		}
	}
	return &m, nil
}

// ParseManagedPlist decodes managed preferences for the domain
// org.detour.helper, as macOS writes them from a configuration profile
// (/Library/Managed Preferences/org.detour.helper.plist, XML or binary): a
// dict whose keys are Managed's JSON field names. Keys that start with
// "Payload" are the profile's own bookkeeping and are passed over; any other
// unknown key is an error, as in the JSON file.
func ParseManagedPlist(b []byte) (*Managed, error) {
	v, err := ParsePlist(b)
	if err != nil {
		return nil, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("not valid: the plist holds %T, not a dict", v)
	}
	for k := range d {
		if strings.HasPrefix(k, "Payload") {
			delete(d, k)
		}
	}
	j, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("not valid: %w", err)
	}
	return ParseManaged(j)
}

// Apply writes the managed values over c and records their names in
// c.Managed. The agent calls it at start (and may call it on each config
// load): Store.Update(func(c *Config) error { m.Apply(c); return nil }).
func (m *Managed) Apply(c *Config) {
	if m == nil {
		return
	}
	var names []string
	if m.Hub != "" {
		c.Hub = m.Hub
		names = append(names, "hub")
	}
	if len(m.WhitelistKeys) > 0 {
		c.WhitelistKeys = append([]whitelist.PublicKey(nil), m.WhitelistKeys...)
		names = append(names, "whitelist_keys")
	}
	if m.Org != "" {
		c.Org = m.Org
		names = append(names, "org")
	}
	if m.ReportAutomatically != nil {
		c.ReportAutomatically = *m.ReportAutomatically
		names = append(names, "report_automatically")
	}
	c.Prompts = nil
	if m.Prompts != nil {
		v := *m.Prompts
		c.Prompts = &v
		names = append(names, "prompts")
	}
	c.Managed = names
}

// ManagedFromRegistry turns the values of the policy key
// (HKLM\SOFTWARE\Policies\Detour, as Group Policy or Intune writes them
// from installer/policy's ADMX) into a Managed: value names are Managed's
// JSON field names; hub, org and enrolment_code are REG_SZ (string),
// report_automatically and prompts REG_DWORD (uint32, 0 or 1), and
// whitelist_keys a REG_SZ holding the JSON array. Anything else is an error,
// as an unknown field in managed.json is.
func ManagedFromRegistry(values map[string]any) (*Managed, error) {
	doc := map[string]any{}
	for name, v := range values {
		switch name {
		case "hub", "org", "enrolment_code":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s is %T, not REG_SZ", name, v)
			}
			doc[name] = s
		case "whitelist_keys":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s is %T, not REG_SZ holding a JSON array", name, v)
			}
			if strings.TrimSpace(s) == "" {
				continue
			}
			doc[name] = json.RawMessage(s)
		case "report_automatically", "prompts":
			n, ok := v.(uint32)
			if !ok || n > 1 {
				return nil, fmt.Errorf("%s is %v, not REG_DWORD 0 or 1", name, v)
			}
			doc[name] = n == 1
		default:
			return nil, fmt.Errorf("unknown value %q", name)
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("not valid: %w", err)
	}
	return ParseManaged(b)
}
