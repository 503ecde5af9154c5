package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../../../.."

// TestGeneratedFilesUpToDate fails when a generated copy of the contract
// (Go constants, contract.js, PROTOCOL.md's tables) differs from what
// contract.json gives: someone edited a copy by hand, or changed the
// contract without running go generate ./shared/protocol.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Render(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"shared/protocol/contract_gen.go", "shared/method/method_gen.go", "shared/version/protocol_gen.go", "extension/src/lib/contract.js", "shared/protocol/PROTOCOL.md"} {
		if _, ok := files[want]; !ok {
			t.Errorf("Render wrote no %s", want)
		}
	}
	for path, b := range files {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Errorf("%s: %v (run go generate ./shared/protocol)", path, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from what contract.json generates: run go generate ./shared/protocol", path)
		}
	}
}

// copyTree makes a scratch repository with the files Render reads, so a test
// can change the contract without touching the real one.
func copyTree(t *testing.T, contract string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"shared/protocol/PROTOCOL.md"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, Source), []byte(contract), 0o644)
	return dir
}

func realContract(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(root, Source))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChangeReachesEveryCopy renames one method, one error code and one need
// in a scratch contract and checks every copy that should carry it does:
// the up-to-date test above then fails until the real files follow.
func TestChangeReachesEveryCopy(t *testing.T) {
	c := realContract(t)
	for _, tc := range []struct {
		name, from, to string
		copies         map[string]string // path → text that must appear
	}{
		{"method", `"name": "tls-reset"`, `"name": "tls-cut"`, map[string]string{
			"shared/method/method_gen.go":   `TLSReset       = "tls-cut"`,
			"extension/src/lib/contract.js": `'tls-cut'`,
		}},
		{"error code", `"name": "timeout", "go": "CodeTimeout"`, `"name": "deadline", "go": "CodeTimeout"`, map[string]string{
			"shared/protocol/contract_gen.go": `CodeTimeout:        "deadline"`,
			"extension/src/lib/contract.js":   `DEADLINE: 11`,
			"shared/protocol/PROTOCOL.md":     `| 11 | deadline |`,
		}},
		{"need", `"name": "guidance"`, `"name": "training"`, map[string]string{
			"shared/method/method_gen.go":   `"training"`,
			"extension/src/lib/contract.js": `'training'`,
		}},
		{"caller", `{"type": "sync", "callers": ["cli", "tray"]}`, `{"type": "sync", "callers": ["browser", "cli", "tray"]}`, map[string]string{
			"shared/protocol/contract_gen.go": `"sync":     {CallerBrowser, CallerCLI, CallerTray}`,
			"extension/src/lib/contract.js":   `'settings', 'sync'`,
			"shared/protocol/PROTOCOL.md":     "| `sync` | browser, cli, tray |",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(c, tc.from) {
				t.Fatalf("contract.json has no %s", tc.from)
			}
			files, err := Render(copyTree(t, strings.Replace(c, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range tc.copies {
				if !strings.Contains(string(files[path]), want) {
					t.Errorf("%s does not carry the change (%s):\n%s", path, want, files[path])
				}
			}
		})
	}
}

// TestContractRefused: a contract that would generate ambiguous copies is an
// error naming the fault.
func TestContractRefused(t *testing.T) {
	c := realContract(t)
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"gap in codes", `"code": 14`, `"code": 15`, "count up from 1"},
		{"duplicate method", `"name": "tcp-timeout"`, `"name": "tcp-reset"`, `method "tcp-reset" appears twice`},
		{"undeclared caller", `"callers": ["cli"]}`, `"callers": ["web"]}`, `undeclared caller "web"`},
		{"bad Go name", `"go": "CodeLocalOnly"`, `"go": "LocalOnly"`, "not a valid name"},
		{"unknown field", `"protocol_version": 1`, `"protocol_version": 1, "extra": 2`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(c, tc.from) {
				t.Fatalf("contract.json has no %s", tc.from)
			}
			_, err := Render(copyTree(t, strings.Replace(c, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Render = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
