#!/bin/sh
# Removes what install.sh installed: exactly the files listed in
# /Library/Application Support/Detour/installed.txt (or, without it, the
# files in this archive's root/), and the folders that leaves empty. Stops
# the agent for the person signed in. Never touches a person's own files:
# their settings, queued reports and logs under ~/Library stay, so a later
# install carries on where this one stopped.
# DETOUR_DESTROOT: as in install.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${DETOUR_DESTROOT:-}
if [ "$(id -u)" -ne 0 ]; then
  echo "uninstall.sh: run it as root: sudo $0" >&2
  exit 1
fi
user=$(stat -f %Su /dev/console 2>/dev/null || true)
if [ -n "$user" ] && [ "$user" != root ]; then
  launchctl bootout "gui/$(id -u "$user")/org.detour.helper" 2>/dev/null || true
fi
support="$dest/Library/Application Support/Detour"
list="$support/installed.txt"
dirs="$support/installed-dirs.txt"
pkg=""
if [ -f "$list" ]; then
  files=$(cat "$list")
elif [ -z "$dest" ] && pkgutil --pkg-info org.detour.helper >/dev/null 2>&1; then
  pkg=org.detour.helper # installed by the .pkg: its receipt lists the files
  files=$(pkgutil --only-files --files "$pkg" | sed 's|^|/|')
else
  files=$(cd "$here/root" && find . -type f | sed 's|^\.||')
fi
echo "$files" | while IFS= read -r f; do
  if [ -n "$f" ]; then rm -f "$dest$f"; fi
done
# Only the folders install.sh made, deepest first, and only when empty.
if [ -f "$dirs" ]; then
  sort -r "$dirs" | while IFS= read -r d; do rmdir "$dest$d" 2>/dev/null || true; done
fi
rm -f "$list" "$dirs"
rmdir "$support" 2>/dev/null || true
if [ -n "$pkg" ]; then pkgutil --forget "$pkg" >/dev/null; fi
echo "Detour removed."
