// Package archtest checks the repository's dependency rules, the way
// Tailscale's deps tests do: it reads what `go list -deps -json` says about
// every package and reports each import that runs against the architecture.
// The rules live here, as data, so that a new rule is one line and the test
// beside this file runs them on the real module and on a crafted one that
// breaks each of them.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
)

// Package is the part of `go list -json` output the rules read.
type Package struct {
	ImportPath string
	Name       string
	Dir        string
	Standard   bool
	Module     *struct{ Path string }
	// Imports are the direct imports and Deps every package reached,
	// without tests (go list leaves test imports out unless asked).
	Imports  []string
	Deps     []string
	CgoFiles []string
	// DepOnly is set for a package listed only as a dependency of the
	// patterns asked for.
	DepOnly bool
}

// List runs `go list -deps -json patterns...` in dir with env added to the
// environment, and decodes its stream of packages.
func List(dir string, env []string, patterns ...string) ([]Package, error) {
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json"}, patterns...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("archtest: go list %s in %s: %w: %s", strings.Join(patterns, " "), dir, err, stderr.Bytes())
	}
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("archtest: decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// Rule is one dependency rule: no package whose path is under From (relative
// to the module, "" for all) may depend, directly or not, on a package under
// any of Not. Allow lists exceptions under Not; Skip lists packages under
// From that the rule does not bind (the command line, which installs).
type Rule struct {
	Why   string
	From  string
	Skip  []string
	Not   []string
	Allow []string
}

// Rules are the module's dependency rules (DESIGN.md, "The parts"; issue 10).
var Rules = []Rule{
	{Why: "the hub never imports the helper", From: "server", Not: []string{"helper"}},
	{Why: "the helper never imports the hub", From: "helper", Not: []string{"server"}},
	{Why: "what Go and JavaScript share imports no side", From: "shared", Not: []string{"helper", "server", "installer"}},
	{Why: "the agent does not import the installer (managed policy lives in helper/config)", From: "helper", Skip: []string{"helper/cli", "helper/cmd"}, Not: []string{"installer"}},
	{Why: "the installer reaches the helper only through its config and paths", From: "installer", Not: []string{"helper"}, Allow: []string{"helper/config", "helper/paths"}},
}

// under reports whether the module-relative path rel is dir or inside it.
func under(rel, dir string) bool {
	return dir == "" || rel == dir || strings.HasPrefix(rel, dir+"/")
}

// Check applies rules to the packages of module (its path, e.g.
// github.com/detour-project/detour) and returns one line per violation.
func Check(module string, pkgs []Package, rules []Rule) []string {
	var bad []string
	rel := func(p string) (string, bool) {
		if p == module {
			return "", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok || p.DepOnly {
			continue
		}
		for _, r := range rules {
			if !under(from, r.From) || slices.ContainsFunc(r.Skip, func(s string) bool { return under(from, s) }) {
				continue
			}
			for _, d := range p.Deps {
				to, ok := rel(d)
				if !ok {
					continue
				}
				forbidden := slices.ContainsFunc(r.Not, func(n string) bool { return under(to, n) })
				allowed := slices.ContainsFunc(r.Allow, func(a string) bool { return under(to, a) })
				if forbidden && !allowed {
					bad = append(bad, fmt.Sprintf("%s depends on %s: %s", from, to, r.Why))
				}
			}
		}
	}
	return bad
}

// CheckNames reports packages of module whose name differs from their
// folder's: importers should never need an alias. Commands are package main.
func CheckNames(module string, pkgs []Package) []string {
	var bad []string
	for _, p := range pkgs {
		if p.DepOnly || p.Standard || (p.ImportPath != module && !strings.HasPrefix(p.ImportPath, module+"/")) {
			continue
		}
		if p.Name == "main" {
			continue
		}
		if want := path.Base(p.ImportPath); p.Name != want {
			bad = append(bad, fmt.Sprintf("%s is package %s: name it %s, for its folder", p.ImportPath, p.Name, want))
		}
	}
	return bad
}

// CheckCgoFree reports every package that the binary root depends on
// (pkgs listed with -deps and cgo enabled) and that uses cgo, outside the
// standard library (whose cgo parts, such as the net resolver, fall away
// with CGO_ENABLED=0). A binary with none builds static for any platform.
func CheckCgoFree(root string, pkgs []Package) []string {
	byPath := make(map[string]Package, len(pkgs))
	for _, p := range pkgs {
		byPath[p.ImportPath] = p
	}
	r, ok := byPath[root]
	if !ok {
		return []string{root + " is not among the listed packages"}
	}
	var bad []string
	for _, d := range append([]string{root}, r.Deps...) {
		if p := byPath[d]; !p.Standard && len(p.CgoFiles) > 0 {
			bad = append(bad, fmt.Sprintf("%s needs %s, which uses cgo (%s)", root, p.ImportPath, strings.Join(p.CgoFiles, ", ")))
		}
	}
	return bad
}
