package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Package is the system package that installed a file: doctor names it, so
// that a person or an IT team knows whether to fix things with the package
// manager (reinstall, upgrade) or with `detour install`.
type Package struct {
	Manager string `json:"manager"` // dpkg, rpm, pkgutil (a macOS .pkg receipt), msi
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

func (p Package) String() string {
	s := "the " + p.Manager + " package " + p.Name
	if p.Version != "" {
		s += " " + p.Version
	}
	return s
}

// PackageFinder asks one package database which package owns a file. Find
// returns nil and no error when the database knows the file not, and an
// error only when it could not be asked properly.
type PackageFinder interface {
	Manager() string
	Find(ctx context.Context, path string) (*Package, error)
}

// PackageFinders are this platform's package databases, asked in order
// (pkgowner_linux.go, pkgowner_darwin.go, pkgowner_windows.go).
var PackageFinders = platformFinders()

// InstalledBy asks each of finders which package installed path; nil when
// none did (a hand install, or a build).
func InstalledBy(ctx context.Context, path string, finders []PackageFinder) (*Package, error) {
	var errs []error
	for _, f := range finders {
		p, err := f.Find(ctx, path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Manager(), err))
			continue
		}
		if p != nil {
			return p, nil
		}
	}
	return nil, errors.Join(errs...)
}

// command runs a package tool; errNotOwned is a run that ended with a
// failure status, which is how these tools say "no package owns that".
var errNotOwned = errors.New("not owned")

func command(ctx context.Context, name string, args ...string) (string, error) {
	if _, err := exec.LookPath(name); err != nil {
		return "", errNoTool
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && ctx.Err() == nil {
		return out.String(), errNotOwned
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w %s", name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// errNoTool is a package tool that is not on this machine: its database
// cannot own anything, which is not an error.
var errNoTool = errors.New("tool not installed")

// finderFunc adapts a function to PackageFinder.
type finderFunc struct {
	manager string
	find    func(ctx context.Context, path string) (*Package, error)
}

func (f finderFunc) Manager() string { return f.manager }

func (f finderFunc) Find(ctx context.Context, path string) (*Package, error) {
	p, err := f.find(ctx, path)
	if errors.Is(err, errNoTool) || errors.Is(err, errNotOwned) {
		return nil, nil
	}
	return p, err
}

// Dpkg asks dpkg (Debian, Ubuntu).
var Dpkg PackageFinder = finderFunc{"dpkg", func(ctx context.Context, path string) (*Package, error) {
	out, err := command(ctx, "dpkg-query", "--search", "--", path)
	if err != nil {
		return nil, err
	}
	name, ok := parseDpkgSearch(out, path)
	if !ok {
		return nil, nil
	}
	v, err := command(ctx, "dpkg-query", "--show", "--showformat=${Version}", "--", name)
	if err != nil && !errors.Is(err, errNotOwned) {
		return nil, err
	}
	return &Package{Manager: "dpkg", Name: name, Version: strings.TrimSpace(v)}, nil
}}

// parseDpkgSearch reads `dpkg-query --search PATH`: lines "pkg[, pkg2]: path",
// among diversion notes. The architecture qualifier (pkg:amd64) is dropped.
func parseDpkgSearch(out, path string) (string, bool) {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "diversion ") {
			continue
		}
		pkgs, p, ok := strings.Cut(l, ": ")
		if !ok || strings.TrimSpace(p) != path {
			continue
		}
		name, _, _ := strings.Cut(pkgs, ",")
		name, _, _ = strings.Cut(strings.TrimSpace(name), ":")
		if name != "" {
			return name, true
		}
	}
	return "", false
}

// Rpm asks rpm (Fedora, RHEL, SUSE).
var Rpm PackageFinder = finderFunc{"rpm", func(ctx context.Context, path string) (*Package, error) {
	out, err := command(ctx, "rpm", "--query", "--file", "--queryformat", `%{NAME}\t%{VERSION}-%{RELEASE}\n`, "--", path)
	if err != nil {
		return nil, err
	}
	return parseRpmQuery(out), nil
}}

// parseRpmQuery reads the first "name\tversion" line of rpm -qf; rpm prints
// "file ... is not owned by any package" with a failure status otherwise.
func parseRpmQuery(out string) *Package {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	name, v, ok := strings.Cut(line, "\t")
	if !ok || name == "" || strings.Contains(name, " ") {
		return nil
	}
	return &Package{Manager: "rpm", Name: name, Version: v}
}

// Pkgutil asks macOS's receipts database (what a .pkg installed).
var Pkgutil PackageFinder = finderFunc{"pkgutil", func(ctx context.Context, path string) (*Package, error) {
	out, err := command(ctx, "pkgutil", "--file-info", path)
	if err != nil {
		return nil, err
	}
	return parsePkgutilFileInfo(out), nil
}}

// parsePkgutilFileInfo reads `pkgutil --file-info PATH`:
//
//	volume: /
//	path: /usr/local/bin/detour
//
//	pkgid: org.detour.helper
//	pkg-version: 1.2.3
//	install-time: 1700000000
//	...
//
// With no receipt it prints the volume and path only.
func parsePkgutilFileInfo(out string) *Package {
	var p Package
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "pkgid":
			if p.Name != "" {
				return &Package{Manager: "pkgutil", Name: p.Name, Version: p.Version} // the first receipt
			}
			p.Name = strings.TrimSpace(v)
		case "pkg-version":
			p.Version = strings.TrimSpace(v)
		}
	}
	if p.Name == "" {
		return nil
	}
	p.Manager = "pkgutil"
	return &p
}
