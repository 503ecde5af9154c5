#!/usr/bin/env bash
# dist part: the macOS archives, built on any machine:
#   detour-V-darwin-amd64.tar.gz, detour-V-darwin-arm64.tar.gz
# each holding detour-V-darwin-ARCH/{install.sh, uninstall.sh, README.md,
# root/} where root/ is what lands on / (scripts/macos-stage.sh): the static
# detour, the LaunchAgent and the manifests. No tray: it needs cgo with Cocoa,
# so it is built on a Mac by `make macos-pkg`, which also makes the .pkg
# (installer/macos/README.md). Reproducible like linux.sh: -trimpath, no VCS
# stamp, empty build id, every file's time SOURCE_DATE_EPOCH.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
: "${VERSION:?}" "${DIST:?}" "${SOURCE_DATE_EPOCH:?}"
pkgver=${VERSION#v}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"
ldflags="-s -w -buildid= -X github.com/detour-project/detour/shared/version.Version=$VERSION"
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/host/detour" ./helper/cmd/detour
for arch in ${DETOUR_MACOS_ARCHES:-amd64 arm64}; do
  name=detour-$pkgver-darwin-$arch
  dir=$work/$name
  GOOS=darwin GOARCH=$arch CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/$arch-detour" ./helper/cmd/detour
  HOST_DETOUR=$work/host/detour scripts/macos-stage.sh "$dir/root" "$work/$arch-detour"
  install -m 0755 installer/macos/install.sh installer/macos/uninstall.sh "$dir/"
  install -m 0644 installer/macos/README.md "$dir/README.md"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$work" -cf - "$name" | gzip -n >"$DIST/$name.tar.gz"
  echo "  $name.tar.gz"
done
