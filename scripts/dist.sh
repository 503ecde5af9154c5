#!/usr/bin/env bash
# make dist: everything a release needs, in dist/. Each part of the release
# is one script in scripts/dist.d/ (windows.sh: the MSI; extension.sh: the
# store zips; linux.sh: .deb and .rpm; macos.sh: the macOS archive), run in
# name order with the same environment:
#   VERSION            the release version (from the tag, see the Makefile)
#   DIST               the output folder (absolute)
#   SOURCE_DATE_EPOCH  the commit's time, so every build of a commit is the same
# Then SHA256SUMS covers every file in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export VERSION=${VERSION:?VERSION is set by the Makefile}
export DIST=${DIST:-$PWD/dist}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
rm -rf "$DIST"; mkdir -p "$DIST"
shopt -s nullglob
for part in scripts/dist.d/*.sh; do
  echo "dist: $(basename "$part" .sh)"
  bash "$part"
done
(cd "$DIST" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -r sha256sum > SHA256SUMS)
echo "dist: $(find "$DIST" -type f | wc -l) files in $DIST"
