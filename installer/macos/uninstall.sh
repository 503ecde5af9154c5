#!/bin/sh
# Removes what install.sh (or the .pkg) installed: exactly the files listed in
# /Library/Application Support/Detour/installed.txt (or, without it, the
# files in this archive's root/). Stops the agent for the person signed in.
# Never touches a person's own files: their settings, queued reports and logs
# under ~/Library stay, so a later install carries on where this one stopped.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "uninstall.sh: run it as root: sudo $0" >&2
  exit 1
fi
user=$(stat -f %Su /dev/console 2>/dev/null || true)
if [ -n "$user" ] && [ "$user" != root ]; then
  launchctl bootout "gui/$(id -u "$user")/org.detour.helper" 2>/dev/null || true
fi
list="/Library/Application Support/Detour/installed.txt"
if [ -f "$list" ]; then
  files=$(cat "$list")
else
  files=$(cd "$here/root" && find . -type f | sed 's|^\.||')
fi
echo "$files" | while IFS= read -r f; do
  [ -n "$f" ] && rm -f "$f" && rmdir "$(dirname "$f")" 2>/dev/null || true
done
rm -f "$list"
rmdir "/Library/Application Support/Detour" 2>/dev/null || true
pkgutil --forget org.detour.helper >/dev/null 2>&1 || true
echo "Detour removed."
