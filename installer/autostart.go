package installer

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/detour-project/detour/helper/config"
)

// The sign-in entries the packages ship (installer/linux, installer/macos)
// are the templates for every other install too, so a package and
// `detour install --autostart` start the agent the same way.
var (
	//go:embed linux/detour.desktop
	desktopEntry string
	//go:embed macos/org.detour.helper.plist
	launchAgent string
)

// The paths the templates name, replaced by the binary's real path.
const (
	linuxPackageBin = "/usr/bin/detour"
	macPackageBin   = "/usr/local/bin/detour"
)

// AutostartBrowser is the record's name for the sign-in entry, which sits in
// the install record beside the manifests so uninstall removes it the same way.
const AutostartBrowser = "autostart"

// autostartPath is where goos looks for a sign-in entry: per user, or
// machine-wide (under Root) with System.
func (o Options) autostartPath() (string, error) {
	switch o.GOOS {
	case "linux":
		if o.System {
			return filepath.Join(o.rootOrSlash(), "/etc/xdg/autostart/detour.desktop"), nil
		}
		return filepath.Join(o.ConfigHome, "autostart", "detour.desktop"), nil
	case "darwin":
		if o.System {
			return filepath.Join(o.rootOrSlash(), "/Library/LaunchAgents/org.detour.helper.plist"), nil
		}
		return filepath.Join(o.Home, "Library", "LaunchAgents", "org.detour.helper.plist"), nil
	}
	return "", fmt.Errorf("installer: starting at sign-in on %s is not supported yet", o.GOOS)
}

// AutostartEntry returns the sign-in entry for goos that runs `exe agent`:
// an XDG autostart desktop entry on Linux, a LaunchAgent on macOS.
func AutostartEntry(goos, exe string) ([]byte, error) {
	if !filepath.IsAbs(exe) {
		return nil, fmt.Errorf("installer: sign-in entry: %q is not an absolute path", exe)
	}
	switch goos {
	case "linux":
		q, err := desktopQuote(exe)
		if err != nil {
			return nil, err
		}
		return []byte(strings.Replace(desktopEntry, "Exec="+linuxPackageBin+" ", "Exec="+q+" ", 1)), nil
	case "darwin":
		return []byte(strings.Replace(launchAgent, "<string>"+macPackageBin+"</string>", "<string>"+xmlEscape(exe)+"</string>", 1)), nil
	}
	return nil, fmt.Errorf("installer: starting at sign-in on %s is not supported yet", goos)
}

// desktopQuote quotes an Exec argument as the Desktop Entry specification
// says: plain when it has no reserved character, else in double quotes. A
// path with a character that would need escaping inside the quotes (" ` $ \
// %) or a line break is refused rather than escaped, so that what is read
// back is simply what is between the quotes.
func desktopQuote(s string) (string, error) {
	if strings.ContainsAny(s, "\"`$\\%\n\r") {
		return "", fmt.Errorf("installer: sign-in entry: the path %q has a character a desktop entry cannot carry plainly; install detour elsewhere", s)
	}
	if !strings.ContainsAny(s, " \t'><~|&;*?#()") {
		return s, nil
	}
	return `"` + s + `"`, nil
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// writeAutostart writes the sign-in entry, recorded first like a manifest.
func (o Options) writeAutostart(rec *record, recPath string) (Entry, error) {
	p, err := o.autostartPath()
	if err != nil {
		return Entry{}, err
	}
	b, err := AutostartEntry(o.GOOS, o.BinPath)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Browser: AutostartBrowser, Path: p}
	created, err := mkdirAll(filepath.Dir(p), 0o755)
	if err != nil {
		return e, err
	}
	rec.addDirs(created)
	if err := rec.addFile(e, b); err != nil {
		return e, err
	}
	if err := rec.save(recPath); err != nil {
		return e, err
	}
	if err := config.WriteFileAtomic(p, b, 0o644); err != nil {
		return e, fmt.Errorf("installer: sign-in entry: %w", err)
	}
	return e, nil
}

// AutostartCheck is doctor's view of the sign-in entries.
type AutostartCheck struct {
	Path    string `json:"path"`
	Scope   string `json:"scope"`
	Problem string `json:"problem,omitempty"`
	// Off is set when the person turned the entry off (Hidden=true or
	// X-GNOME-Autostart-enabled=false, as the desktops' startup settings
	// write it; Disabled in a LaunchAgent): their choice, not a fault.
	Off bool `json:"off,omitempty"`
}

// CheckAutostart looks for this user's and the machine's sign-in entries.
// None found is not an error: the browser still starts the agent, only later.
func CheckAutostart(o Options) ([]AutostartCheck, error) {
	o.RecordPath = "-"
	o, err := o.resolve()
	if err != nil {
		return nil, err
	}
	var out []AutostartCheck
	for _, system := range []bool{false, true} {
		o.System = system
		p, err := o.autostartPath()
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		c := AutostartCheck{Path: p, Scope: map[bool]string{false: "user", true: "system"}[system]}
		c.Off = autostartOff(o.GOOS, string(b))
		if exe := autostartExe(o.GOOS, string(b)); exe == "" {
			c.Problem = "does not say which program to start"
		} else if err := CheckExecutable(exe); err != nil {
			c.Problem = err.Error()
		}
		out = append(out, c)
	}
	return out, nil
}

// autostartOff says whether an entry is turned off.
func autostartOff(goos, s string) bool {
	switch goos {
	case "linux":
		for _, l := range strings.Split(s, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
			if (k == "Hidden" && v == "true") || (k == "X-GNOME-Autostart-enabled" && v == "false") {
				return true
			}
		}
	case "darwin":
		if v, err := config.ParsePlist([]byte(s)); err == nil {
			if m, ok := v.(map[string]any); ok && m["Disabled"] == true {
				return true
			}
		}
	}
	return false
}

// autostartExe reads back the program an entry starts ("" when unclear).
func autostartExe(goos, s string) string {
	switch goos {
	case "linux":
		for _, l := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(l, "Exec="); ok {
				if q, ok := strings.CutPrefix(v, `"`); ok {
					exe, _, ok := strings.Cut(q, `"`)
					if !ok {
						return ""
					}
					return exe
				}
				exe, _, _ := strings.Cut(v, " ")
				return exe
			}
		}
	case "darwin":
		if v, err := config.ParsePlist([]byte(s)); err == nil {
			if m, ok := v.(map[string]any); ok {
				if args, ok := m["ProgramArguments"].([]any); ok && len(args) > 0 {
					exe, _ := args[0].(string)
					return exe
				}
			}
		}
	}
	return ""
}
