#!/usr/bin/env bash
# make macos-pkg: the signed-or-not macOS installer package, ON A MAC only
# (pkgbuild and productbuild are Apple's; Debian has no xar/bomutils):
#   dist/detour-V-macos.pkg
# A universal detour and detour-tray (lipo of amd64 and arm64; the tray links
# Cocoa through cgo, so it builds only here), the LaunchAgent and the
# manifests (scripts/macos-stage.sh), and a postinstall that starts the agent
# for the person signed in. Set DETOUR_MACOS_SIGN="Developer ID Installer: …"
# to sign the package with productbuild --sign.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)" != Darwin ]; then
  echo "macos-pkg: pkgbuild runs on macOS only; on this machine use make dist (the darwin archives)" >&2
  exit 1
fi
: "${VERSION:?VERSION is set by the Makefile}"
pkgver=${VERSION#v}
DIST=${DIST:-$PWD/dist}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ldflags="-s -w -buildid= -X github.com/detour-project/detour/shared/version.Version=$VERSION"
for arch in amd64 arm64; do
  GOOS=darwin GOARCH=$arch CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/detour-$arch" ./helper/cmd/detour
  GOOS=darwin GOARCH=$arch CGO_ENABLED=1 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$work/detour-tray-$arch" ./helper/cmd/detour-tray
done
lipo -create -output "$work/detour" "$work/detour-amd64" "$work/detour-arm64"
lipo -create -output "$work/detour-tray" "$work/detour-tray-amd64" "$work/detour-tray-arm64"
scripts/macos-stage.sh "$work/root" "$work/detour" "$work/detour-tray"
mkdir -p "$DIST"
pkgbuild --root "$work/root" --identifier org.detour.helper --version "$pkgver" \
  --scripts installer/macos/scripts --install-location / "$work/detour.pkg"
sign=()
if [ -n "${DETOUR_MACOS_SIGN:-}" ]; then sign=(--sign "$DETOUR_MACOS_SIGN"); fi
productbuild ${sign[@]+"${sign[@]}"} --package "$work/detour.pkg" "$DIST/detour-$pkgver-macos.pkg"
echo "macos-pkg: $DIST/detour-$pkgver-macos.pkg (check: pkgutil --payload-files, then sudo installer -pkg … -target /)"
