#!/bin/sh
# Installs Detour on this Mac for every user: run `sudo ./install.sh` in the
# unpacked archive. It copies root/ onto / (the detour binary in
# /usr/local/bin, the native-messaging manifests for Chrome, Chromium, Edge
# and Firefox in /Library/..., the LaunchAgent in /Library/LaunchAgents),
# lists what it wrote in /Library/Application Support/Detour/installed.txt
# for uninstall.sh, and starts the agent for the person signed in now.
# A person's own files (~/Library/Application Support/Detour, their queued
# reports, settings and logs) are never touched.
# DETOUR_DESTROOT puts everything under another folder (tests on Linux).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${DETOUR_DESTROOT:-}
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root: sudo $0" >&2
  exit 1
fi
support="$dest/Library/Application Support/Detour"
list="$support/installed.txt"
dirs="$support/installed-dirs.txt"
mkdir -p "$support"
: >"$list.new"
[ -f "$dirs" ] || : >"$dirs"
# mkdirs DIR: creates DIR and its missing parents, listing each one created
# (outermost first) so that uninstall.sh removes only folders made here.
mkdirs() {
  [ -d "$dest$1" ] && return 0
  mkdirs "$(dirname "$1")"
  mkdir "$dest$1"
  echo "$1" >>"$dirs"
}
cd "$here/root"
find . -type f | sed 's|^\./||' | sort | while IFS= read -r f; do
  mkdirs "/$(dirname "$f")"
  cp "$f" "$dest/$f.detour-new"
  chmod "$(stat -f %Lp "$f")" "$dest/$f.detour-new"
  chown root:wheel "$dest/$f.detour-new"
  mv -f "$dest/$f.detour-new" "$dest/$f" # atomic: a running browser never reads half a manifest
  echo "/$f" >>"$list.new"
done
mv -f "$list.new" "$list"
# Quarantine would stop a binary copied from a download from starting.
xattr -d com.apple.quarantine "$dest/usr/local/bin/detour" 2>/dev/null || true
user=$(stat -f %Su /dev/console 2>/dev/null || true)
if [ -n "$user" ] && [ "$user" != root ]; then
  uid=$(id -u "$user")
  launchctl bootout "gui/$uid/org.detour.helper" 2>/dev/null || true
  launchctl bootstrap "gui/$uid" "$dest/Library/LaunchAgents/org.detour.helper.plist" || true
fi
echo "Detour installed: /usr/local/bin/detour doctor checks it."
