package cli

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/detour-project/detour/installer"
)

// doctorPackageFinders are the package databases doctor asks; tests swap it.
var doctorPackageFinders = installer.PackageFinders

// checkPackage says which package installed this binary and whether the
// machine-wide native host entries are still the package's: a package that
// was half removed, or whose manifests someone replaced, is fixed by
// reinstalling it, not by `detour install`.
func checkPackage(ctx context.Context, o installer.Options) DoctorCheck {
	c := DoctorCheck{Name: "package", Status: CheckOK}
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			c.Status, c.Detail = CheckWarn, "cannot tell where this binary is: "+err.Error()
			return c
		}
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	p, err := installer.InstalledBy(ctx, exe, doctorPackageFinders)
	switch {
	case err != nil:
		c.Status, c.Detail = CheckWarn, "could not ask the package database about "+exe+": "+err.Error()
		c.Fix = "run doctor again; if it stays so, check the package manager works"
		return c
	case p == nil:
		c.Detail = "not from a package: " + exe + " was installed by hand or built here"
		return c
	}
	c.Detail = "installed by " + p.String()
	o.System, o.Exe, o.Dir = true, exe, ""
	entries, _, err := installer.Targets(o)
	if err != nil || len(entries) == 0 {
		return c // no machine-wide folders here (Windows: registry entries the MSI owns)
	}
	var missing, other []string
	for _, e := range entries {
		b, err := os.ReadFile(e.Path)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, e.Browser)
			continue
		}
		m, perr := installer.ParseManifest(b)
		if err == nil && perr == nil {
			perr = m.Validate(e.Browser)
		}
		if err != nil || perr != nil || m.Path != exe {
			other = append(other, e.Browser)
		}
	}
	if len(missing)+len(other) == 0 {
		c.Detail += "; its native host entries (" + browsersOf(entries) + ") name " + exe
		return c
	}
	c.Status = CheckWarn
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing for "+strings.Join(missing, ", "))
	}
	if len(other) > 0 {
		parts = append(parts, "changed or naming another binary for "+strings.Join(other, ", "))
	}
	c.Detail += ", but its native host entries are " + strings.Join(parts, "; ")
	c.Fix = reinstallHint(p)
	return c
}

func browsersOf(es []installer.Entry) string {
	var b []string
	for _, e := range es {
		b = append(b, e.Browser)
	}
	return strings.Join(b, ", ")
}

func reinstallHint(p *installer.Package) string {
	switch p.Manager {
	case "dpkg":
		return "sudo apt install --reinstall " + p.Name
	case "rpm":
		return "sudo dnf reinstall " + p.Name + " (or zypper install -f " + p.Name + ")"
	case "pkgutil":
		return "install the Detour .pkg again"
	case "msi":
		return "repair Detour in Settings › Apps, or msiexec /fa the Detour MSI"
	}
	return "reinstall " + p.Name
}

// checkAutostart says whether something starts the agent (and the tray) at
// sign-in; without it the agent starts only when a browser first needs it.
// Where the installer knows no sign-in entry (Windows: the MSI's Run key)
// there is no line.
func checkAutostart(o installer.Options) []DoctorCheck {
	c, ok := autostartLine(o)
	if !ok {
		return nil
	}
	return []DoctorCheck{c}
}

func autostartLine(o installer.Options) (DoctorCheck, bool) {
	c := DoctorCheck{Name: "start at sign-in", Status: CheckOK}
	cs, err := installer.CheckAutostart(o)
	if err != nil {
		return c, false
	}
	if len(cs) == 0 {
		c.Status = CheckWarn
		c.Detail = "nothing starts the agent at sign-in: the tray appears only once a browser has used Detour"
		c.Fix = "run `detour install --autostart` (the packages do this for every user)"
		return c, true
	}
	var parts []string
	for _, a := range cs {
		if a.Problem != "" {
			c.Status = CheckFail
			c.Detail = a.Path + ": " + a.Problem
			c.Fix = "run `detour install --autostart` again, or reinstall the package"
			return c, true
		}
		if a.Off {
			// The person's entry wins over the machine's (same file name):
			// turned off there means off.
			c.Status = CheckWarn
			c.Detail = a.Path + " is turned off: the agent and tray start only once a browser has used Detour"
			c.Fix = "turn Detour on again in your desktop's startup applications, if you want the tray at sign-in"
			return c, true
		}
		parts = append(parts, a.Path+" ("+a.Scope+")")
	}
	c.Detail = strings.Join(parts, ", ")
	return c, true
}
