package archtest

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/detour-project/detour"

// listEnv lists with cgo on, so that a package's cgo files show (with cgo
// off they are left out and a cgo dependency would hide), outside any
// workspace and without touching the network.
var listEnv = []string{"CGO_ENABLED=1", "GOWORK=off", "GOFLAGS=-mod=readonly", "GOPROXY=off"}

// The repository keeps its rules on every platform it ships for (a file
// such as x_windows.go may import what x_unix.go does not): the dependency
// directions, names that match folders, and a cgo-free bin/detour.
func TestRepositoryKeepsTheRules(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, goos := range []string{"linux", "windows", "darwin"} {
		t.Run(goos, func(t *testing.T) {
			pkgs, err := List(root, append(listEnv, "GOOS="+goos, "GOARCH=amd64"), "./...")
			if err != nil {
				t.Fatal(err)
			}
			var bad []string
			bad = append(bad, Check(module, pkgs, Rules)...)
			bad = append(bad, CheckNames(module, pkgs)...)
			bad = append(bad, CheckCgoFree(module+"/helper/cmd/detour", pkgs)...)
			for _, b := range bad {
				t.Error(b)
			}
			// The check saw the packages it guards (a wrong pattern passes nothing).
			for _, must := range []string{"/helper/agent", "/server/cmd/detour-server", "/shared/protocol", "/installer"} {
				if !slices.ContainsFunc(pkgs, func(p Package) bool { return p.ImportPath == module+must }) {
					t.Errorf("%s was not listed", module+must)
				}
			}
		})
	}
}

// Each rule fails when broken: testdata/badmod breaks every one once, and
// keeps what the rules allow (a test importing across, the command line
// importing the installer, the installer importing helper/config).
func TestEachRuleCatchesItsBreak(t *testing.T) {
	const bm = "example.com/bad"
	pkgs, err := List("testdata/badmod", listEnv, "./...")
	if err != nil {
		t.Fatal(err)
	}
	got := Check(bm, pkgs, Rules)
	got = append(got, CheckNames(bm, pkgs)...)
	got = append(got, CheckCgoFree(bm+"/helper/cmd/tool", pkgs)...)
	want := []string{
		"server/hub depends on helper/relay: the hub never imports the helper",
		"helper/agent depends on server/store: the helper never imports the hub",
		"shared/proto depends on helper/paths: what Go and JavaScript share imports no side",
		"helper/agent depends on installer: the agent does not import the installer",
		"installer depends on helper/relay: the installer reaches the helper only through its config and paths",
		"example.com/bad/names is package namesdata: name it names",
		"example.com/bad/helper/cmd/tool needs example.com/bad/helper/gtk, which uses cgo (gtk.go)",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("no violation %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d violations, want %d (something allowed was flagged):\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}
