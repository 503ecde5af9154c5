#!/usr/bin/env bash
# Installs what building, running and testing Detour need on Debian 12:
# Debian packages (only those missing), npm packages from the lockfile, and
# Go modules. Safe to run again; it does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
  chromium              # browser tests and `make demo`
  firefox-esr           # the Firefox native-messaging test
  postgresql            # the PostgreSQL store tests
  gnome-keyring dbus dbus-x11 libsecret-tools  # a real Secret Service for keyring tests
  xvfb                  # the tray test's X server
  libgtk-3-dev libayatana-appindicator3-dev    # detour-tray (getlantern/systray, cgo)
  pkg-config gcc make ca-certificates
  librsvg2-bin zip      # extension icons from one SVG (rsvg-convert); the store zips
  rpm rpm2cpio cpio     # the package test reads the .rpm back (test/packages)
  wine64 wine gcc-mingw-w64-x86-64  # the Windows tests under Wine (test/wine), with the ProcessPrng shim
  wixl msitools osslsigncode        # the MSI (scripts/dist.d/windows.sh: wixl, msibuild) and its Authenticode signature
  skopeo umoci runc curl  # the hub's container image read, unpacked, run without a container engine and asked over HTTP (server/deploy/ociimage)
  podman                  # ... and loaded and run by a real container engine, as an operator would (TestImageRunsInPodman)
  systemd               # systemd-analyze verify checks the hub's unit (server/deploy/systemd_test.go)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -L node_modules ]; then
  # A worktree sharing another checkout's node_modules through a link: npm ci
  # would empty the shared folder through it and leave a private copy here.
  # The checkout that owns the folder installs into it.
  :
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

go mod download

# nfpm builds the .deb and .rpm (make dist, test/packages); a build tool kept
# out of go.mod, installed once into a per-user tool cache.
scripts/nfpm.sh >/dev/null
