// Package version is the one version string of every Detour binary; the
// build sets it with -ldflags "-X github.com/detour-project/detour/shared/version.Version=...".
package version

// Version of this build.
var Version = "0.1.0-dev"
