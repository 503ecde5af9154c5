package installer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// platformFinders: an MSI registers its product under the Uninstall keys.
func platformFinders() []PackageFinder { return []PackageFinder{MSI} }

// MSI finds the Windows Installer product whose install folder holds path:
// HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\{ProductCode}
// with WindowsInstaller = 1 and InstallLocation (ARPINSTALLLOCATION, which
// the Detour MSI sets) the binary's folder, or, where that is not set, a
// DisplayName starting with "Detour".
var MSI PackageFinder = finderFunc{"msi", func(ctx context.Context, path string) (*Package, error) {
	const uninstall = `SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`
	root, err := registry.OpenKey(registry.LOCAL_MACHINE, uninstall, registry.ENUMERATE_SUB_KEYS|registry.WOW64_64KEY)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	names, err := root.ReadSubKeyNames(-1)
	if err != nil {
		return nil, err
	}
	dir := strings.ToLower(filepath.Clean(filepath.Dir(path)))
	for _, n := range names {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		k, err := registry.OpenKey(root, n, registry.QUERY_VALUE|registry.WOW64_64KEY)
		if err != nil {
			continue
		}
		msi, _, _ := k.GetIntegerValue("WindowsInstaller")
		name, _, _ := k.GetStringValue("DisplayName")
		version, _, _ := k.GetStringValue("DisplayVersion")
		loc, _, locErr := k.GetStringValue("InstallLocation")
		k.Close()
		if msi != 1 {
			continue
		}
		match := locErr == nil && loc != "" && strings.ToLower(filepath.Clean(loc)) == dir
		if errors.Is(locErr, registry.ErrNotExist) || loc == "" {
			match = strings.HasPrefix(name, "Detour")
		}
		if match {
			return &Package{Manager: "msi", Name: name + " " + n, Version: version}, nil
		}
	}
	return nil, nil
}}
