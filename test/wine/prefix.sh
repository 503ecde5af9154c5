#!/usr/bin/env bash
# Makes a throwaway Wine prefix that runs Go binaries: `. test/wine/prefix.sh DIR`
# exports WINEPREFIX=DIR/prefix, WINEDEBUG=-all and WINE (the wine64 loader),
# creates the prefix and copies in the ProcessPrng shim (shim/bcryptprimitives.c).
# Returns non-zero, saying why, when wine64 or mingw is missing.
wine_setup() {
  local dir=$1 here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  WINE=/usr/lib/wine/wine64
  [ -x "$WINE" ] || WINE=$(command -v wine64 || true)
  if [ -z "$WINE" ] || [ ! -x "$WINE" ]; then echo "wine: no wine64 (Debian wine64)" >&2; return 1; fi
  if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then echo "wine: no x86_64-w64-mingw32-gcc (Debian gcc-mingw-w64-x86-64)" >&2; return 1; fi
  export WINEPREFIX="$dir/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINE
  mkdir -p "$dir"
  x86_64-w64-mingw32-gcc -shared -O2 -o "$dir/bcryptprimitives.dll" "$here/shim/bcryptprimitives.c" -ladvapi32 || return 1
  "$WINE" wineboot -i >/dev/null 2>&1 || { echo "wine: wineboot failed" >&2; return 1; }
  "${WINE%/*}/wineserver" -w 2>/dev/null || true
  cp "$dir/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
}
wine_teardown() {
  [ -n "${WINE:-}" ] && [ -n "${WINEPREFIX:-}" ] && "${WINE%/*}/wineserver" -k 2>/dev/null || true
}
