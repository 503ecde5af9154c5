package installer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/detour-project/detour/shared/ids"
)

// Manifest is a native-messaging host manifest. Chrome-family browsers read
// AllowedOrigins, Firefox reads AllowedExtensions; a manifest has one of them.
type Manifest struct {
	Name              string   `json:"name"`
	Description       string   `json:"description"`
	Path              string   `json:"path"`
	Type              string   `json:"type"`
	AllowedOrigins    []string `json:"allowed_origins,omitempty"`
	AllowedExtensions []string `json:"allowed_extensions,omitempty"`
}

// FileName is the manifest's file name in every folder: the host name.
const FileName = ids.NativeHost + ".json"

// NewManifest returns the manifest for browser with exe as the host binary.
// It admits every ID of the browser's family in shared/ids (development,
// stores, and any added at build time), so one installed helper serves the
// extension however it was installed.
func NewManifest(browser, exe string) Manifest {
	m := Manifest{
		Name:        ids.NativeHost,
		Description: "Detour helper: tells you how a collaboration tool was blocked and what you may use instead",
		Path:        exe,
		Type:        "stdio",
	}
	if IsFirefox(browser) {
		m.AllowedExtensions = ids.FirefoxIDs()
	} else {
		m.AllowedOrigins = ids.ChromeOrigins()
	}
	return m
}

// Encode returns the manifest as the bytes written to disk.
func (m Manifest) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("installer: encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseManifest decodes a manifest strictly: an unknown field is an error,
// because a browser that sees one it does not expect may ignore the file.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("installer: manifest is not valid JSON: %w", err)
	}
	return m, nil
}

// Validate checks that m is the manifest browser needs to start Detour: our
// host name, stdio, an absolute path, and exactly our extension as the caller.
// It does not look at the file system; see CheckExecutable.
func (m Manifest) Validate(browser string) error {
	want := NewManifest(browser, m.Path)
	switch {
	case m.Name != want.Name:
		return fmt.Errorf("manifest names host %q, not %q", m.Name, want.Name)
	case m.Type != "stdio":
		return fmt.Errorf("manifest type is %q, not stdio", m.Type)
	case !filepath.IsAbs(m.Path):
		return fmt.Errorf("manifest path %q is not absolute", m.Path)
	case !equal(m.AllowedOrigins, want.AllowedOrigins):
		return fmt.Errorf("manifest allows origins %q, want %q", m.AllowedOrigins, want.AllowedOrigins)
	case !equal(m.AllowedExtensions, want.AllowedExtensions):
		return fmt.Errorf("manifest allows extensions %q, want %q", m.AllowedExtensions, want.AllowedExtensions)
	}
	return nil
}

// CheckExecutable says whether path is a regular file that can be executed.
func CheckExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("host binary %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("host binary %s is not a regular file", path)
	}
	// Windows has no execute bit: a program is a file named .exe.
	if runtime.GOOS == "windows" {
		if !strings.EqualFold(filepath.Ext(path), ".exe") {
			return errors.New("host binary " + path + " is not an .exe")
		}
		return nil
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return errors.New("host binary " + path + " is not executable")
	}
	return nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
