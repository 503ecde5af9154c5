#!/usr/bin/env bash
# Lays out the files Detour installs on a Mac under STAGE, as they will be
# under /: usr/local/bin/detour (and detour-tray when given), the LaunchAgent
# in Library/LaunchAgents, and the native-messaging manifests written by
# `detour install --system --root STAGE --bin-path /usr/local/bin/detour
# --target-os darwin`, the code a person runs. Used by scripts/dist.d/macos.sh
# (the archive, on any machine) and scripts/macos-pkg.sh (the .pkg, on a Mac).
#   scripts/macos-stage.sh STAGE DETOUR [TRAY]
# HOST_DETOUR is a detour that runs on this machine (default: DETOUR).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=$1 detour=$2 tray=${3:-}
host=${HOST_DETOUR:-$detour}
install -d -m 0755 "$stage/usr/local/bin"
install -m 0755 "$detour" "$stage/usr/local/bin/detour"
if [ -n "$tray" ]; then install -m 0755 "$tray" "$stage/usr/local/bin/detour-tray"; fi
# The manifests and the LaunchAgent (from installer/macos/org.detour.helper.plist).
"$host" install --system --root "$stage" --bin-path /usr/local/bin/detour --target-os darwin --autostart >/dev/null
rm -rf "$stage/var" # the install record: install.sh and the .pkg receipt keep their own
