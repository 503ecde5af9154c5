package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// ManifestCheck is doctor's view of one browser's registration.
type ManifestCheck struct {
	Browser string `json:"browser"`
	Scope   string `json:"scope"` // "user" or "system"
	Path    string `json:"path"`
	// Key is the registry key that names Path (Windows).
	Key string `json:"key,omitempty"`
	// Problem is empty when the manifest is there, valid and points at an
	// executable; otherwise it says what is wrong in a sentence.
	Problem string `json:"problem,omitempty"`
	// Other is set when the manifest is valid but names a different binary
	// than Options.Exe (an older copy, or a package's).
	Other string `json:"other,omitempty"`
}

// Check looks at every manifest a browser would read: for each browser found
// for this user, its per-user manifest (or a machine-wide one instead); and
// every machine-wide manifest that exists. A found browser with neither is a
// problem. Options.System is ignored: doctor looks at both.
func Check(o Options) ([]ManifestCheck, error) {
	o.System = false
	if o.RecordPath == "" {
		o.RecordPath = "-" // not used: Check writes nothing
	}
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if o.GOOS == "windows" {
		reg, err := o.registry()
		if err != nil {
			return nil, err
		}
		return checkWindows(o, reg)
	}
	rows := locations[o.GOOS]
	if rows == nil {
		return nil, fmt.Errorf("installer: checking on %s is not supported yet", o.GOOS)
	}
	var out []ManifestCheck
	for _, l := range rows {
		if !slices.Contains(o.Browsers, l.Browser) {
			continue
		}
		userDir := o.expand(l.UserDir)
		found := isDir(filepath.Dir(userDir))
		var present []ManifestCheck
		for _, c := range []ManifestCheck{
			{Browser: l.Browser, Scope: "user", Path: filepath.Join(userDir, FileName)},
			{Browser: l.Browser, Scope: "system", Path: systemPath(o, l)},
		} {
			if c.Path == "" || (c.Scope == "user" && !found) {
				continue
			}
			b, err := os.ReadFile(c.Path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				c.Problem = err.Error()
			} else {
				c.Problem, c.Other = checkManifest(l.Browser, b, o.Exe, "")
			}
			present = append(present, c)
		}
		if found && len(present) == 0 {
			present = append(present, ManifestCheck{
				Browser: l.Browser, Scope: "user", Path: filepath.Join(userDir, FileName),
				Problem: "the browser is installed but Detour is not registered with it",
			})
		}
		out = append(out, present...)
	}
	return out, nil
}

func systemPath(o Options, l Location) string {
	if l.SystemDir == "" {
		return ""
	}
	return filepath.Join(o.rootOrSlash(), l.SystemDir, FileName)
}

// checkManifest checks a manifest's bytes for browser against the running
// exe. With base (the manifest's folder, Windows only) a relative path is
// taken from that folder, as the browsers do there: the MSI's manifests name
// detour.exe so, to follow INSTALLDIR.
func checkManifest(browser string, b []byte, exe, base string) (problem, other string) {
	m, err := ParseManifest(b)
	if err != nil {
		return err.Error(), ""
	}
	if base != "" && !filepath.IsAbs(m.Path) {
		m.Path = filepath.Join(base, m.Path)
	}
	if err := m.Validate(browser); err != nil {
		return err.Error(), ""
	}
	if err := CheckExecutable(m.Path); err != nil {
		return err.Error(), ""
	}
	if m.Path != exe {
		other = m.Path
	}
	return "", other
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
