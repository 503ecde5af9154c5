package installer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/detour-project/detour/helper/config"
	"github.com/detour-project/detour/shared/ids"
)

// Browser policy can stop Detour however well it is installed: a
// NativeMessagingBlocklist of "*" without Detour in the allow-list refuses
// the native host, NativeMessagingUserLevelHosts false ignores a per-user
// registration, and an ExtensionInstallBlocklist of "*" refuses the extension
// itself. doctor reads the Chrome-family policies where they are files it can
// read (Linux: the managed policy folders; macOS: the managed preferences
// plists) and says which of these is in the way.

// policySource is where one browser's machine policy lives on one OS.
type policySource struct {
	Browser string
	// Dirs hold JSON policy files (Linux), merged in name order.
	Dirs []string
	// Plist is a managed preferences file (macOS).
	Plist string
}

var policySources = map[string][]policySource{
	"linux": {
		{Browser: "chrome", Dirs: []string{"/etc/opt/chrome/policies/managed"}},
		{Browser: "chromium", Dirs: []string{"/etc/chromium/policies/managed", "/etc/chromium-browser/policies/managed"}},
		{Browser: "edge", Dirs: []string{"/etc/opt/edge/policies/managed"}},
		{Browser: "brave", Dirs: []string{"/etc/brave/policies/managed"}},
	},
	"darwin": {
		{Browser: "chrome", Plist: "/Library/Managed Preferences/com.google.Chrome.plist"},
		{Browser: "chromium", Plist: "/Library/Managed Preferences/org.chromium.Chromium.plist"},
		{Browser: "edge", Plist: "/Library/Managed Preferences/com.microsoft.Edge.plist"},
		{Browser: "brave", Plist: "/Library/Managed Preferences/com.brave.Browser.plist"},
	},
}

// PolicyCheck is doctor's view of one browser's policy.
type PolicyCheck struct {
	Browser string   `json:"browser"`
	Sources []string `json:"sources"` // the files read
	// Problem is empty when policy lets Detour run; otherwise what stops it.
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// Notes are facts worth knowing that stop nothing (e.g. only machine-wide
	// hosts may run, and one is installed).
	Notes []string `json:"notes,omitempty"`
}

// chromePolicy is the part of a Chrome-family policy that concerns Detour.
type chromePolicy struct {
	NativeMessagingBlocklist      []string
	NativeMessagingAllowlist      []string
	NativeMessagingUserLevelHosts *bool
	ExtensionInstallBlocklist     []string
	ExtensionInstallAllowlist     []string
	ExtensionInstallForcelist     []string
	ExtensionSettings             map[string]json.RawMessage
}

// merge adds q's values to p; a later file's setting replaces an earlier one,
// as Chrome does for files in the same folder (which it says is undefined).
func (p *chromePolicy) merge(q chromePolicy) {
	if q.NativeMessagingBlocklist != nil {
		p.NativeMessagingBlocklist = q.NativeMessagingBlocklist
	}
	if q.NativeMessagingAllowlist != nil {
		p.NativeMessagingAllowlist = q.NativeMessagingAllowlist
	}
	if q.NativeMessagingUserLevelHosts != nil {
		p.NativeMessagingUserLevelHosts = q.NativeMessagingUserLevelHosts
	}
	if q.ExtensionInstallBlocklist != nil {
		p.ExtensionInstallBlocklist = q.ExtensionInstallBlocklist
	}
	if q.ExtensionInstallAllowlist != nil {
		p.ExtensionInstallAllowlist = q.ExtensionInstallAllowlist
	}
	if q.ExtensionInstallForcelist != nil {
		p.ExtensionInstallForcelist = q.ExtensionInstallForcelist
	}
	if q.ExtensionSettings != nil {
		p.ExtensionSettings = q.ExtensionSettings
	}
}

// CheckBrowserPolicy reads each found browser's machine policy (under
// o.Root) and judges it against the manifests Check found (a per-user
// registration is refused when NativeMessagingUserLevelHosts is false). A
// browser without policy files gets no row. Windows' registry policy is not
// read here.
func CheckBrowserPolicy(o Options, manifests []ManifestCheck) ([]PolicyCheck, error) {
	goos := o.GOOS
	if goos == "" {
		goos = runtime.GOOS
	}
	root := o.Root
	if root == "" {
		root = "/"
	}
	var out []PolicyCheck
	for _, src := range policySources[goos] {
		if len(o.Browsers) > 0 && !slices.Contains(o.Browsers, src.Browser) {
			continue
		}
		var pol chromePolicy
		pc := PolicyCheck{Browser: src.Browser}
		var readErr error
		for _, d := range src.Dirs {
			files, err := filepath.Glob(filepath.Join(root, d, "*.json"))
			if err != nil {
				return nil, fmt.Errorf("installer: policy: %w", err)
			}
			sort.Strings(files)
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err == nil {
					var q chromePolicy
					if err = json.Unmarshal(b, &q); err == nil {
						pol.merge(q)
					}
				}
				if err != nil {
					readErr = errors.Join(readErr, fmt.Errorf("%s: %w", f, err))
					continue
				}
				pc.Sources = append(pc.Sources, f)
			}
		}
		if src.Plist != "" {
			f := filepath.Join(root, src.Plist)
			b, err := os.ReadFile(f)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				readErr = fmt.Errorf("%s: %w", f, err)
			default:
				q, err := policyFromPlist(b)
				if err != nil {
					readErr = fmt.Errorf("%s: %w", f, err)
				} else {
					pol.merge(q)
					pc.Sources = append(pc.Sources, f)
				}
			}
		}
		if readErr != nil {
			// A policy file the browser would also fail to read says nothing
			// about Detour, but the person should know doctor could not judge.
			pc.Notes = append(pc.Notes, "could not read: "+readErr.Error())
		}
		if len(pc.Sources) == 0 && readErr == nil {
			continue
		}
		judge(&pc, pol, manifests)
		out = append(out, pc)
	}
	return out, nil
}

func judge(pc *PolicyCheck, pol chromePolicy, manifests []ManifestCheck) {
	host := ids.NativeHost
	blocked := slices.Contains(pol.NativeMessagingBlocklist, "*") || slices.Contains(pol.NativeMessagingBlocklist, host)
	if blocked && !slices.Contains(pol.NativeMessagingAllowlist, host) {
		pc.Problem = "browser policy NativeMessagingBlocklist refuses the native host " + host
		pc.Fix = "ask your IT team to add " + host + " to NativeMessagingAllowlist (installer/policy)"
		return
	}
	if pol.NativeMessagingUserLevelHosts != nil && !*pol.NativeMessagingUserLevelHosts {
		var user, system bool
		for _, m := range manifests {
			if m.Browser != pc.Browser || m.Problem != "" {
				continue
			}
			user = user || m.Scope == "user"
			system = system || m.Scope == "system"
		}
		switch {
		case !system && user:
			pc.Problem = "browser policy NativeMessagingUserLevelHosts is false, so the per-user registration is ignored"
			pc.Fix = "install Detour for the whole machine (the package, or `sudo detour install --system`)"
			return
		default:
			pc.Notes = append(pc.Notes, "only machine-wide native hosts may run (NativeMessagingUserLevelHosts is false)")
		}
	}
	// The extension itself: refused by a blocklist of "*" or of its ID,
	// unless allowed or force-installed under one of the IDs we admit.
	var admitted []string
	for _, id := range ids.ChromeIDs() {
		if slices.Contains(pol.ExtensionInstallAllowlist, id) || slices.ContainsFunc(pol.ExtensionInstallForcelist, func(s string) bool {
			return s == id || strings.HasPrefix(s, id+";")
		}) || pol.ExtensionSettings[id] != nil {
			admitted = append(admitted, id)
		}
	}
	if len(admitted) > 0 {
		pc.Notes = append(pc.Notes, "policy installs or allows the extension "+strings.Join(admitted, ", "))
		return
	}
	for _, id := range ids.ChromeIDs() {
		if slices.Contains(pol.ExtensionInstallBlocklist, "*") || slices.Contains(pol.ExtensionInstallBlocklist, id) {
			pc.Problem = "browser policy ExtensionInstallBlocklist refuses the Detour extension"
			pc.Fix = "ask your IT team to force-install it (ExtensionInstallForcelist) or allow it (ExtensionInstallAllowlist)"
			return
		}
	}
}

// policyFromPlist reads the Chrome policy keys from a managed preferences
// plist, through JSON so that arrays and dicts land in chromePolicy's types.
func policyFromPlist(b []byte) (chromePolicy, error) {
	v, err := config.ParsePlist(b)
	if err != nil {
		return chromePolicy{}, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return chromePolicy{}, fmt.Errorf("the plist holds %T, not a dict", v)
	}
	j, err := json.Marshal(d)
	if err != nil {
		return chromePolicy{}, err
	}
	var p chromePolicy
	if err := json.Unmarshal(j, &p); err != nil {
		return chromePolicy{}, err
	}
	return p, nil
}
