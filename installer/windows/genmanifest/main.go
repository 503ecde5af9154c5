// Command genmanifest writes the two native-messaging manifests the MSI puts
// beside detour.exe (org.detour.helper.json for the Chrome family,
// org.detour.helper.firefox.json for Firefox), naming the host binary:
// `go run ./installer/windows/genmanifest DIR detour.exe`. The MSI names it
// relative to the manifests, which Chrome, Edge and Firefox allow on Windows,
// so the manifests stay right wherever INSTALLDIR puts them.
// It uses the installer's own manifest code, so the MSI's manifests are the
// ones `detour install` writes.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/detour-project/detour/installer"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, `usage: genmanifest DIR detour.exe`)
		os.Exit(2)
	}
	dir, exe := os.Args[1], os.Args[2]
	for _, f := range []struct{ browser, name string }{{"chrome", installer.FileName}, {"firefox", installer.FirefoxFileName}} {
		b, err := installer.NewManifest(f.browser, exe).Encode()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f.name), b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "genmanifest:", err)
			os.Exit(1)
		}
	}
}
