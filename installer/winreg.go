package installer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/detour-project/detour/shared/ids"
)

// On Windows a browser finds a native-messaging host through a registry key,
// per user under HKEY_CURRENT_USER or per machine under HKEY_LOCAL_MACHINE,
// whose default value is the path of the manifest file. The manifests are
// written beside detour.exe; the keys are the part that is not a folder.

// RegistryKeys are the keys each browser reads, relative to HKCU or HKLM.
// Sources: Chrome's native-messaging documentation (Google\Chrome; Chromium
// reads its own), Microsoft's for Edge, MDN for Firefox (Mozilla), the
// vendors' builds for Brave, Vivaldi and Opera (each reads its own key).
var RegistryKeys = []struct{ Browser, Key string }{
	{"chrome", `Software\Google\Chrome\NativeMessagingHosts\` + ids.NativeHost},
	{"chromium", `Software\Chromium\NativeMessagingHosts\` + ids.NativeHost},
	{"edge", `Software\Microsoft\Edge\NativeMessagingHosts\` + ids.NativeHost},
	{"brave", `Software\BraveSoftware\Brave-Browser\NativeMessagingHosts\` + ids.NativeHost},
	{"vivaldi", `Software\Vivaldi\NativeMessagingHosts\` + ids.NativeHost},
	{"opera", `Software\Opera Software\NativeMessagingHosts\` + ids.NativeHost},
	{"firefox", `Software\Mozilla\NativeMessagingHosts\` + ids.NativeHost},
}

// FirefoxFileName is the Firefox manifest beside detour.exe on Windows: the
// Chrome-family manifest has the host's name and differs from Firefox's.
const FirefoxFileName = ids.NativeHost + ".firefox.json"

// Registry is the part of the Windows registry install needs. machine picks
// HKLM, else HKCU; keys are relative to it. Tests use a map (MapRegistry).
type Registry interface {
	// Get returns the key's default value; ok is false when the key does not
	// exist (a key without a default value is ok with "").
	Get(machine bool, key string) (value string, ok bool, err error)
	// Set creates key and any missing parents and sets its default value. It
	// returns the keys it created, outermost first.
	Set(machine bool, key, value string) (created []string, err error)
	// Delete removes key, which must have no subkeys.
	Delete(machine bool, key string) error
	// Empty says whether key has neither subkeys nor values.
	Empty(machine bool, key string) (bool, error)
}

// MapRegistry is an in-memory Registry, for tests on any OS.
type MapRegistry map[string]*string

func (m MapRegistry) id(machine bool, key string) string {
	hive := "HKCU"
	if machine {
		hive = "HKLM"
	}
	return hive + `\` + strings.ToLower(key)
}

func (m MapRegistry) Get(machine bool, key string) (string, bool, error) {
	v, ok := m[m.id(machine, key)]
	if !ok {
		return "", false, nil
	}
	if v == nil {
		return "", true, nil
	}
	return *v, true, nil
}

func (m MapRegistry) Set(machine bool, key, value string) ([]string, error) {
	var created []string
	parts := strings.Split(key, `\`)
	for i := 1; i <= len(parts); i++ {
		k := strings.Join(parts[:i], `\`)
		if _, ok := m[m.id(machine, k)]; !ok {
			m[m.id(machine, k)] = nil
			created = append(created, k)
		}
	}
	m[m.id(machine, key)] = &value
	return created, nil
}

func (m MapRegistry) Delete(machine bool, key string) error {
	if m.hasChildren(machine, key) {
		return fmt.Errorf("registry: %s has subkeys", key)
	}
	delete(m, m.id(machine, key))
	return nil
}

func (m MapRegistry) hasChildren(machine bool, key string) bool {
	p := m.id(machine, key) + `\`
	for k := range m {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func (m MapRegistry) Empty(machine bool, key string) (bool, error) {
	v, ok := m[m.id(machine, key)]
	if !ok {
		return false, nil
	}
	return v == nil && !m.hasChildren(machine, key), nil
}

// recordKey is a registry key install set, in the install record.
type recordKey struct {
	Browser string `json:"browser"`
	Machine bool   `json:"machine"`
	Key     string `json:"key"`
	Value   string `json:"value"`
	// Previous is the key's default value before install (nil: no key).
	Previous *string `json:"previous,omitempty"`
}

// createdKey is a key install created (a missing parent included).
type createdKey struct {
	Machine bool   `json:"machine"`
	Key     string `json:"key"`
}

func (o Options) registry() (Registry, error) {
	if o.Registry != nil {
		return o.Registry, nil
	}
	if r := systemRegistry(); r != nil {
		return r, nil
	}
	return nil, errors.New("installer: the Windows registry is only there on Windows")
}

// windowsManifest is where browser's manifest goes: beside the binary.
func windowsManifest(exe, browser string) string {
	name := FileName
	if IsFirefox(browser) {
		name = FirefoxFileName
	}
	return filepath.Join(filepath.Dir(exe), name)
}

func windowsKey(browser string) string {
	for _, k := range RegistryKeys {
		if k.Browser == browser {
			return k.Key
		}
	}
	return ""
}

// windowsTargets lists a Windows install: every browser gets its key (the
// registry has no profile folder to look for, and a key for a browser that
// is not there is harmless and goes on uninstall).
func (o Options) windowsTargets() []Entry {
	var out []Entry
	for _, k := range RegistryKeys {
		if slices.Contains(o.Browsers, k.Browser) {
			out = append(out, Entry{Browser: k.Browser, Path: windowsManifest(o.Exe, k.Browser), Key: o.hive() + `\` + k.Key})
		}
	}
	return out
}

func (o Options) hive() string {
	if o.System {
		return "HKLM"
	}
	return "HKCU"
}

// setKey points browser's key at its manifest, recording first what it is
// about to change, so that uninstall can put it back.
func (o Options) setKey(reg Registry, t Entry, rec *record, recPath string) error {
	key := windowsKey(t.Browser)
	prev, existed, err := reg.Get(o.System, key)
	if err != nil {
		return fmt.Errorf("installer: read %s: %w", t.Key, err)
	}
	i := slices.IndexFunc(rec.Keys, func(k recordKey) bool { return k.Machine == o.System && strings.EqualFold(k.Key, key) })
	if i < 0 {
		rk := recordKey{Browser: t.Browser, Machine: o.System, Key: key, Value: t.Path}
		if existed {
			rk.Previous = &prev
		}
		rec.Keys = append(rec.Keys, rk)
	} else {
		rec.Keys[i].Value = t.Path
	}
	if err := rec.save(recPath); err != nil {
		return err
	}
	created, err := reg.Set(o.System, key, t.Path)
	for _, c := range created {
		rec.CreatedKeys = append(rec.CreatedKeys, createdKey{Machine: o.System, Key: c})
	}
	if serr := rec.save(recPath); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("installer: set %s: %w", t.Key, err)
	}
	if back, ok, err := reg.Get(o.System, key); err != nil || !ok || back != t.Path {
		return fmt.Errorf("installer: %s written but reads back %q (%v)", t.Key, back, err)
	}
	return nil
}

// uninstallKeys undoes what setKey did: a key that still names our manifest
// is removed (or given back its old value); one changed since is kept. Keys
// install created are removed afterwards, deepest first, when empty.
func uninstallKeys(reg Registry, rec *record, res *UninstallResult) error {
	for _, k := range rec.Keys {
		hive := "HKCU"
		if k.Machine {
			hive = "HKLM"
		}
		e := Entry{Browser: k.Browser, Path: k.Value, Key: hive + `\` + k.Key}
		v, ok, err := reg.Get(k.Machine, k.Key)
		switch {
		case err != nil:
			return fmt.Errorf("installer: read %s: %w", e.Key, err)
		case !ok:
			continue
		case v != k.Value:
			res.Kept = append(res.Kept, Skip{Browser: k.Browser, Reason: e.Key + " changed since install; left in place"})
			continue
		case k.Previous != nil:
			if _, err := reg.Set(k.Machine, k.Key, *k.Previous); err != nil {
				return fmt.Errorf("installer: restore %s: %w", e.Key, err)
			}
			res.Restored = append(res.Restored, e)
			continue
		}
		if err := reg.Delete(k.Machine, k.Key); err != nil {
			return fmt.Errorf("installer: remove %s: %w", e.Key, err)
		}
		res.Removed = append(res.Removed, e)
	}
	created := slices.Clone(rec.CreatedKeys)
	slices.SortFunc(created, func(a, b createdKey) int { return len(b.Key) - len(a.Key) })
	for _, c := range created {
		if empty, err := reg.Empty(c.Machine, c.Key); err == nil && empty {
			_ = reg.Delete(c.Machine, c.Key)
		}
	}
	return nil
}

// checkWindows is Check on Windows: for each browser, the HKCU and HKLM keys
// that exist and the manifests they name. A browser whose own key exists
// (the parent of NativeMessagingHosts: it has run for this user, or is
// installed for the machine) with neither is a problem.
func checkWindows(o Options, reg Registry) ([]ManifestCheck, error) {
	var out []ManifestCheck
	for _, k := range RegistryKeys {
		if !slices.Contains(o.Browsers, k.Browser) {
			continue
		}
		browserKey := k.Key[:strings.LastIndex(k.Key[:strings.LastIndex(k.Key, `\`)], `\`)]
		found := false
		var present []ManifestCheck
		for _, machine := range []bool{false, true} {
			scope, hive := "user", "HKCU"
			if machine {
				scope, hive = "system", "HKLM"
			}
			if _, ok, _ := reg.Get(machine, browserKey); ok {
				found = true
			}
			v, ok, err := reg.Get(machine, k.Key)
			if !ok && err == nil {
				continue
			}
			c := ManifestCheck{Browser: k.Browser, Scope: scope, Path: v, Key: hive + `\` + k.Key}
			if err != nil {
				c.Problem = err.Error()
			} else if b, err := os.ReadFile(v); err != nil {
				c.Problem = "the key names a manifest that cannot be read: " + err.Error()
			} else {
				c.Problem, c.Other = checkManifest(k.Browser, b, o.Exe, filepath.Dir(v))
			}
			present = append(present, c)
		}
		if found && len(present) == 0 {
			present = append(present, ManifestCheck{Browser: k.Browser, Scope: "user", Key: `HKCU\` + k.Key,
				Problem: "the browser is installed but Detour is not registered with it"})
		}
		out = append(out, present...)
	}
	return out, nil
}

// windowsSystemRecord is where a machine-wide install on Windows records what
// it wrote: %ProgramData%\Detour\installed.json.
func windowsSystemRecord() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "Detour", "installed.json")
}
