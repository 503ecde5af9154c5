#!/usr/bin/env bash
# dist part: the Linux packages, built with nfpm (scripts/nfpm.sh):
#   detour_V_amd64.deb   detour-V.x86_64.rpm    detour, detour-tray, manifests, autostart
#   detour_V_arm64.deb   detour-V.aarch64.rpm   the same without the tray (it needs cgo
#                                               with GTK for arm64, which this build lacks)
#   detour-server_V_{amd64,arm64}.deb, detour-server-V.{x86_64,aarch64}.rpm   the hub
# and the static binaries themselves as detour-V-linux-ARCH.tar.gz.
#
# Reproducible: -trimpath, no VCS stamp, an empty build id, every file's time
# SOURCE_DATE_EPOCH (the commit's), so a second build of a commit is the same
# bytes (the package test checks it). The native-messaging manifests are
# written by `detour install --system --root STAGE --bin-path /usr/bin/detour
# --autostart`,
# the code a person runs, so packages and hand installs never disagree.
#
# The packages have no maintainer scripts: dpkg and rpm remove exactly the
# files they installed, and nothing ever touches a home folder, so a person's
# settings and queued reports (~/.config/detour, ~/.local/state/detour, …)
# survive removal and every upgrade.
#
# Env (scripts/dist.sh): VERSION, DIST, SOURCE_DATE_EPOCH. DETOUR_LINUX_ARCHES
# narrows the architectures (default "amd64 arm64"); DETOUR_LINUX_PACKAGES
# narrows the packages (default "detour detour-server").
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
: "${VERSION:?}" "${DIST:?}" "${SOURCE_DATE_EPOCH:?}"
export SOURCE_DATE_EPOCH
arches=${DETOUR_LINUX_ARCHES:-amd64 arm64}
packages=${DETOUR_LINUX_PACKAGES:-detour detour-server}
nfpm=$(scripts/nfpm.sh)
pkgver=${VERSION#v}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"

ldflags="-s -w -buildid= -X github.com/detour-project/detour/shared/version.Version=$VERSION"
gobuild() { # GOARCH CGO OUT PKG
  GOOS=linux GOARCH=$1 CGO_ENABLED=$2 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$3" "$4"
}

# The manifests and the sign-in entry (/etc/xdg/autostart/detour.desktop,
# from installer/linux/detour.desktop), staged once (they are the same for
# every architecture) by a detour built for this machine.
gobuild "$(go env GOARCH)" 0 "$work/host/detour" ./helper/cmd/detour
stage=$work/stage
"$work/host/detour" install --system --root "$stage" --bin-path /usr/bin/detour --autostart >/dev/null
rm -rf "$stage/var" # the install record: dpkg and rpm keep their own
# Folders every system has: the packages must not claim them.
common=" /etc /etc/opt /usr /usr/lib /usr/bin /etc/xdg /etc/xdg/autostart "

# contents ARCH: the nfpm contents list of the detour package.
contents() {
  local arch=$1 bin=$work/$1
  printf '  - {src: %s, dst: /usr/bin/detour, file_info: {mode: 0755}}\n' "$bin/detour"
  if [ -x "$bin/detour-tray" ]; then
    printf '  - {src: %s, dst: /usr/bin/detour-tray, file_info: {mode: 0755}}\n' "$bin/detour-tray"
  fi
  (cd "$stage" && find . -mindepth 1 -type d -printf '/%P\n' | LC_ALL=C sort) | while read -r d; do
    case "$common" in *" $d "*) continue ;; esac
    printf '  - {dst: "%s", type: dir, file_info: {mode: 0755}}\n' "$d"
  done
  (cd "$stage" && find . -type f -printf '/%P\n' | LC_ALL=C sort) | while read -r f; do
    # Not conffiles: `dpkg -r` must take the registration away with the binary.
    printf '  - {src: "%s", dst: "%s", file_info: {mode: 0644}}\n' "$stage$f" "$f"
  done
}

pack() { # CONFIG FORMAT OUT
  "$nfpm" package --config "$1" --packager "$2" --target "$3" >/dev/null
  echo "  $(basename "$3")"
}

for arch in $arches; do
  bin=$work/$arch
  mkdir -p "$bin"
  rpmarch=$arch
  case $arch in amd64) rpmarch=x86_64 ;; arm64) rpmarch=aarch64 ;; esac
  for p in $packages; do
    case $p in
    detour)
      gobuild "$arch" 0 "$bin/detour" ./helper/cmd/detour
      deb_deps="" rpm_deps=""
      # The tray links GTK and AppIndicator through cgo: built only where the
      # C toolchain and libraries are this machine's own architecture.
      if [ "$arch" = "$(go env GOARCH)" ]; then
        gobuild "$arch" 1 "$bin/detour-tray" ./helper/cmd/detour-tray
        deb_deps="[libayatana-appindicator3-1, libgtk-3-0]"
        rpm_deps="[libayatana-appindicator-gtk3, gtk3]"
      else
        echo "  note: no detour-tray for $arch (cgo cross-build not set up); that package starts the agent only"
      fi
      cfg=$work/detour-$arch.yaml
      {
        cat <<EOF
name: detour
arch: $arch
platform: linux
version: $pkgver
section: net
priority: optional
maintainer: Detour project <detour@invalid>
vendor: Detour project
rpm: {buildhost: detour-build} # not this machine's name: the same bytes anywhere
description: |-
  Tells you how a collaboration tool was blocked and what you may use instead.
  The native-messaging helper for the Detour browser extension (Chrome, Chromium,
  Edge, Brave, Vivaldi, Firefox), its per-user agent and tray icon, started at
  sign-in.
EOF
        [ -n "$deb_deps" ] && printf 'overrides:\n  deb: {depends: %s}\n  rpm: {depends: %s}\n' "$deb_deps" "$rpm_deps"
        echo "contents:"
        contents "$arch"
      } >"$cfg"
      pack "$cfg" deb "$DIST/detour_${pkgver}_$arch.deb"
      pack "$cfg" rpm "$DIST/detour-$pkgver.$rpmarch.rpm"
      tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$bin" -cf - $(cd "$bin" && ls detour detour-tray 2>/dev/null) | gzip -n >"$DIST/detour-$pkgver-linux-$arch.tar.gz"
      echo "  detour-$pkgver-linux-$arch.tar.gz"
      ;;
    detour-server)
      gobuild "$arch" 0 "$bin/detour-server" ./server/cmd/detour-server
      cfg=$work/detour-server-$arch.yaml
      cat >"$cfg" <<EOF
name: detour-server
arch: $arch
platform: linux
version: $pkgver
section: net
priority: optional
maintainer: Detour project <detour@invalid>
vendor: Detour project
rpm: {buildhost: detour-build} # not this machine's name: the same bytes anywhere
description: |-
  The Detour hub: signed whitelist, token issuer, report collector and the IT
  dashboard. Run it with \`detour-server serve --data DIR\`.
contents:
  - {src: $bin/detour-server, dst: /usr/bin/detour-server, file_info: {mode: 0755}}
EOF
      pack "$cfg" deb "$DIST/detour-server_${pkgver}_$arch.deb"
      pack "$cfg" rpm "$DIST/detour-server-$pkgver.$rpmarch.rpm"
      ;;
    *) echo "linux.sh: unknown package $p" >&2; exit 2 ;;
    esac
  done
done
