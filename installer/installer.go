// Package installer registers the detour binary as a native-messaging host
// with every supported browser, and takes the registration away again.
//
// Install writes one manifest per browser (per user only where the browser's
// profile folder exists; with System, into the machine-wide folders), writes
// each atomically, re-reads and validates it, and keeps a record of every
// file and folder it created or replaced. Uninstall works from that record
// alone: it removes what install wrote, restores what install replaced, and
// leaves a file alone if someone has changed it since.
//
// Where manifests go is data (locations.go), so that another operating system
// is new rows rather than new code. Managed settings for organisations are
// read by the helper (helper/config.ReadManaged); policy templates are in installer/policy.
package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/detour-project/detour/shared/atomicfile"
)

// Options says what to install where. The zero value of each field means the
// real machine: tests set Root and Home to temporary folders.
type Options struct {
	// System installs into the machine-wide folders rather than the user's.
	System bool
	// Browsers limits the browsers; empty means all of Browsers.
	Browsers []string
	// Dir, if set, writes the manifests into this folder instead of the
	// browsers' own (e.g. a test's <user-data-dir>/NativeMessagingHosts).
	Dir string
	// Exe is the absolute path of the detour binary; empty means this one.
	Exe string
	// BinPath is where the binary will be when a browser starts it, and so
	// the path every manifest names. Empty means Exe, or, with Root, Exe's
	// place below Root. A package build stages manifests under Root for a
	// binary the package puts elsewhere (/usr/bin/detour), so the path of
	// the build's own binary must never leak into them.
	BinPath string
	// Root prefixes every system path ("" is /).
	Root string
	// Home is the user's home folder; empty means os.UserHomeDir.
	Home string
	// ConfigHome is the user's config folder; empty means $XDG_CONFIG_HOME,
	// else Home/.config.
	ConfigHome string
	// RecordPath is where the record of a per-user install is kept (the
	// CLI uses the helper's config folder). A system install keeps its
	// record under Root at SystemRecord.
	RecordPath string
	// GOOS picks the location table; empty means runtime.GOOS.
	GOOS string
	// Registry is where a Windows install writes its keys; nil means this
	// machine's registry (Windows only). Tests pass a MapRegistry.
	Registry Registry
	// Autostart also writes the sign-in entry that starts `detour agent`
	// (and so the tray): ~/.config/autostart/detour.desktop or
	// ~/Library/LaunchAgents/org.detour.helper.plist per user,
	// /etc/xdg/autostart or /Library/LaunchAgents with System.
	Autostart bool
}

// SystemRecord is where a system install records what it wrote, under Root.
const SystemRecord = "/var/lib/detour/installed.json"

// Entry is one manifest written or checked.
type Entry struct {
	Browser string `json:"browser"`
	Path    string `json:"path"`
	// Key is the registry key naming Path (Windows), e.g.
	// HKCU\Software\Google\Chrome\NativeMessagingHosts\org.detour.helper.
	Key string `json:"key,omitempty"`
}

// Skip is a browser that was not installed for, and why.
type Skip struct {
	Browser string `json:"browser"`
	Reason  string `json:"reason"`
}

// Result says what Install did.
type Result struct {
	Exe     string  `json:"exe"`
	Record  string  `json:"record"`
	Written []Entry `json:"written"`
	Skipped []Skip  `json:"skipped,omitempty"`
	// Autostart is the sign-in entry written, if Options.Autostart.
	Autostart string `json:"autostart,omitempty"`
}

// Install writes the manifests and updates the record. It stops at the first
// failure; what it wrote before that is already in the record, so uninstall
// still removes it.
func Install(o Options) (Result, error) {
	o, err := o.resolve()
	if err != nil {
		return Result{}, err
	}
	if err := o.resolveBinPath(); err != nil {
		return Result{}, err
	}
	if err := o.checkBinary(); err != nil {
		return Result{}, fmt.Errorf("installer: %w", err)
	}
	if o.Autostart && o.Dir == "" {
		// Refuse before anything is written, not halfway.
		if _, err := o.autostartPath(); err != nil {
			return Result{}, err
		}
		if _, err := AutostartEntry(o.GOOS, o.BinPath); err != nil {
			return Result{}, err
		}
	}
	targets, skipped, err := o.targets()
	if err != nil {
		return Result{}, err
	}
	var reg Registry
	if o.windowsRegistry() {
		if reg, err = o.registry(); err != nil {
			return Result{}, err
		}
	}
	res := Result{Exe: o.BinPath, Record: o.recordPath(), Skipped: skipped}
	rec, err := loadRecord(res.Record)
	if err != nil {
		return res, err
	}
	// The record's own folder is recorded too, so uninstall leaves nothing.
	// Per user it is the helper's private config folder.
	perm := os.FileMode(0o700)
	if o.System {
		perm = 0o755
	}
	created, err := mkdirAll(filepath.Dir(res.Record), perm)
	if err != nil {
		return res, err
	}
	rec.addDirs(created)
	if err := rec.save(res.Record); err != nil {
		return res, err
	}
	for _, t := range targets {
		if err := o.writeOne(t, rec, res.Record); err != nil {
			return res, err
		}
		if reg != nil {
			if err := o.setKey(reg, t, rec, res.Record); err != nil {
				return res, err
			}
		}
		res.Written = append(res.Written, t)
	}
	if o.Autostart && o.Dir == "" {
		e, err := o.writeAutostart(rec, res.Record)
		if err != nil {
			return res, err
		}
		res.Autostart = e.Path
	}
	return res, nil
}

// windowsRegistry says whether o registers through the Windows registry
// rather than manifest folders.
func (o Options) windowsRegistry() bool { return o.GOOS == "windows" && o.Dir == "" }

// writeOne writes one manifest, recording first what it is about to create
// or replace, so that a crash between the two never leaves an unrecorded file.
func (o Options) writeOne(t Entry, rec *record, recPath string) error {
	b, err := NewManifest(t.Browser, o.BinPath).Encode()
	if err != nil {
		return err
	}
	created, err := mkdirAll(filepath.Dir(t.Path), 0o755)
	if err != nil {
		return err
	}
	rec.addDirs(created)
	if err := rec.addFile(t, b); err != nil {
		return err
	}
	if err := rec.save(recPath); err != nil {
		return err
	}
	if err := atomicfile.Write(t.Path, b, 0o644); err != nil {
		return fmt.Errorf("installer: %s: %w", t.Browser, err)
	}
	back, err := os.ReadFile(t.Path)
	if err != nil {
		return fmt.Errorf("installer: re-read %s: %w", t.Path, err)
	}
	m, err := ParseManifest(back)
	if err == nil {
		err = m.Validate(t.Browser)
	}
	if err == nil && m.Path != o.BinPath {
		err = fmt.Errorf("manifest path %q, want %q", m.Path, o.BinPath)
	}
	if err != nil {
		return fmt.Errorf("installer: %s written but invalid: %w", t.Path, err)
	}
	return nil
}

// UninstallResult says what Uninstall did.
type UninstallResult struct {
	Record   string  `json:"record"`
	Removed  []Entry `json:"removed"`
	Restored []Entry `json:"restored,omitempty"`
	Kept     []Skip  `json:"kept,omitempty"`
}

// Uninstall removes what the record says install wrote, and the record.
// A manifest changed since install is left where it is and reported in Kept.
func Uninstall(o Options) (UninstallResult, error) {
	o, err := o.resolve()
	if err != nil {
		return UninstallResult{}, err
	}
	res := UninstallResult{Record: o.recordPath()}
	rec, err := loadRecord(res.Record)
	if err != nil {
		return res, err
	}
	for _, f := range rec.Files {
		e := Entry{Browser: f.Browser, Path: f.Path}
		b, err := os.ReadFile(f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return res, fmt.Errorf("installer: read %s: %w", f.Path, err)
		case digest(b) != f.SHA256:
			res.Kept = append(res.Kept, Skip{Browser: f.Browser, Reason: f.Path + " changed since install; left in place"})
			continue
		}
		if f.Previous != nil {
			if err := atomicfile.Write(f.Path, []byte(*f.Previous), f.PreviousMode); err != nil {
				return res, fmt.Errorf("installer: restore %s: %w", f.Path, err)
			}
			res.Restored = append(res.Restored, e)
			continue
		}
		if err := os.Remove(f.Path); err != nil {
			return res, fmt.Errorf("installer: remove %s: %w", f.Path, err)
		}
		res.Removed = append(res.Removed, e)
	}
	if len(rec.Keys)+len(rec.CreatedKeys) > 0 {
		reg, err := o.registry()
		if err != nil {
			return res, err
		}
		if err := uninstallKeys(reg, rec, &res); err != nil {
			return res, err
		}
	}
	if err := os.Remove(res.Record); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("installer: remove record %s: %w", res.Record, err)
	}
	// Folders install created go too, deepest first, but only when empty:
	// anything someone else put there since stays, and so does its folder.
	dirs := slices.Clone(rec.Dirs)
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		_ = os.Remove(d) // fails on a non-empty or missing folder, as it should
	}
	return res, nil
}

// Targets lists the manifests Install would write for o, and the browsers it
// would skip; doctor uses it to know which browsers are found.
func Targets(o Options) ([]Entry, []Skip, error) {
	o, err := o.resolve()
	if err != nil {
		return nil, nil, err
	}
	return o.targets()
}

func (o Options) resolve() (Options, error) {
	if o.GOOS == "" {
		o.GOOS = runtime.GOOS
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("installer: cannot tell where the detour binary is: %w", err)
		}
		o.Exe = exe
	}
	exe, err := filepath.Abs(o.Exe)
	if err != nil {
		return o, fmt.Errorf("installer: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	o.Exe = exe
	if o.Home == "" {
		h, err := os.UserHomeDir()
		if err != nil && !o.System {
			return o, fmt.Errorf("installer: no home folder: %w", err)
		}
		o.Home = h
	}
	if o.ConfigHome == "" {
		o.ConfigHome = os.Getenv("XDG_CONFIG_HOME")
		if o.ConfigHome == "" {
			o.ConfigHome = filepath.Join(o.Home, ".config")
		}
	}
	if len(o.Browsers) == 0 {
		o.Browsers = Browsers
	}
	for _, b := range o.Browsers {
		if !slices.Contains(Browsers, b) {
			return o, fmt.Errorf("installer: unknown browser %q (known: %s)", b, strings.Join(Browsers, ", "))
		}
	}
	if o.System && o.Dir != "" {
		return o, errors.New("installer: --dir and --system cannot be combined")
	}
	if !o.System && o.RecordPath == "" {
		return o, errors.New("installer: no record path for a per-user install")
	}
	return o, nil
}

// resolveBinPath settles the path the manifests name (see Options.BinPath).
func (o *Options) resolveBinPath() error {
	if o.BinPath != "" {
		if !filepath.IsAbs(o.BinPath) || filepath.Clean(o.BinPath) != o.BinPath {
			return fmt.Errorf("installer: --bin-path %q must be an absolute, clean path (e.g. /usr/bin/detour)", o.BinPath)
		}
		return nil
	}
	if o.Root == "" || !o.System {
		o.BinPath = o.Exe
		return nil
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	rel, err := filepath.Rel(root, o.Exe)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("installer: with --root the manifests must name where the binary will be installed, "+
			"but %s is not under %s: pass --bin-path (e.g. /usr/bin/detour)", o.Exe, root)
	}
	o.BinPath = "/" + filepath.ToSlash(rel)
	return nil
}

// checkBinary makes sure the manifests will name an executable. Staged under
// a Root the binary may not be there yet (the package brings it), but if it
// is, it must be executable.
func (o Options) checkBinary() error {
	if o.Root == "" {
		return CheckExecutable(o.BinPath)
	}
	staged := filepath.Join(o.Root, o.BinPath)
	if _, err := os.Stat(staged); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return CheckExecutable(staged)
}

func (o Options) recordPath() string {
	if o.System && o.GOOS == "windows" && o.Root == "" {
		return windowsSystemRecord()
	}
	if o.System {
		return filepath.Join(o.rootOrSlash(), SystemRecord)
	}
	return o.RecordPath
}

func (o Options) rootOrSlash() string {
	if o.Root == "" {
		return "/"
	}
	return o.Root
}

func (o Options) expand(p string) string {
	switch {
	case strings.HasPrefix(p, "$CONFIG/"):
		return filepath.Join(o.ConfigHome, strings.TrimPrefix(p, "$CONFIG/"))
	case strings.HasPrefix(p, "$HOME/"):
		return filepath.Join(o.Home, strings.TrimPrefix(p, "$HOME/"))
	}
	return p
}

func (o Options) targets() ([]Entry, []Skip, error) {
	if o.Dir != "" {
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, nil, fmt.Errorf("installer: %w", err)
		}
		// Chrome-family manifests are one identical file; Firefox's differs
		// and cannot share a folder with them under the same name.
		var out []Entry
		fam := map[bool]bool{}
		for _, b := range o.Browsers {
			if fam[IsFirefox(b)] {
				continue
			}
			fam[IsFirefox(b)] = true
			out = append(out, Entry{Browser: b, Path: filepath.Join(dir, FileName)})
		}
		if len(fam) > 1 {
			return nil, nil, errors.New("installer: --dir takes Chrome-family browsers or firefox, not both")
		}
		return out, nil, nil
	}
	if o.windowsRegistry() {
		return o.windowsTargets(), nil, nil
	}
	rows := locations[o.GOOS]
	if rows == nil {
		return nil, nil, fmt.Errorf("installer: installing on %s is not supported yet", o.GOOS)
	}
	var out []Entry
	var skip []Skip
	for _, l := range rows {
		if !slices.Contains(o.Browsers, l.Browser) {
			continue
		}
		if o.System {
			if l.SystemDir == "" {
				skip = append(skip, Skip{Browser: l.Browser, Reason: "has no machine-wide manifest folder on " + o.GOOS})
				continue
			}
			out = append(out, Entry{Browser: l.Browser, Path: filepath.Join(o.rootOrSlash(), l.SystemDir, FileName)})
			continue
		}
		dir := o.expand(l.UserDir)
		if fi, err := os.Stat(filepath.Dir(dir)); err != nil || !fi.IsDir() {
			skip = append(skip, Skip{Browser: l.Browser, Reason: "not found (" + filepath.Dir(dir) + " does not exist)"})
			continue
		}
		out = append(out, Entry{Browser: l.Browser, Path: filepath.Join(dir, FileName)})
	}
	return out, skip, nil
}

// mkdirAll is os.MkdirAll that returns the folders it created, outermost
// first, so that uninstall can remove exactly those.
func mkdirAll(dir string, perm os.FileMode) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("installer: %w", err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	for _, d := range missing {
		if err := os.Mkdir(d, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("installer: create %s: %w", d, err)
		}
	}
	return missing, nil
}
