#!/usr/bin/env bash
# The store-ready extension zips (Chrome Web Store, Edge Add-ons, AMO), the
# listing icons, and, for an organisation that hosts the extension itself,
# a CRX3 signed with its key plus updates.xml:
#   DETOUR_CRX_KEY=org.pem DETOUR_CRX_URL=https://it.example/detour make dist
# (the CRX's ID comes from that key: build the helper with
# DETOUR_EXTENSION_IDS=self-hosted=ID, printed below; docs/deploy.md).
# Every file's time is SOURCE_DATE_EPOCH, so the zips are the same each build.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DIST:?}" "${VERSION:?}" "${SOURCE_DATE_EPOCH:?}"
# make dist ran make build first; build again only if that did not happen.
[ -f extension/dist/amo/manifest.json ] && [ -f extension/dist/chrome-store/vendor/govuk.css ] || node extension/build.mjs >/dev/null
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for pair in chrome-store:chrome-web-store edge-store:edge-add-ons amo:amo; do
  src=${pair%%:*} name=${pair#*:}
  cp -r "extension/dist/$src" "$tmp/$src"
  find "$tmp/$src" -type d -exec chmod 755 {} + ; find "$tmp/$src" -type f -exec chmod 644 {} +
  find "$tmp/$src" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  out="$DIST/detour-extension-$VERSION-$name.zip"
  (cd "$tmp/$src" && find . -type f | LC_ALL=C sort | zip -X -q -D "$out" -@)
  echo "extension: $(basename "$out")"
done
mkdir -p "$DIST/store-assets"
cp extension/dist/store-assets/*.png "$DIST/store-assets/"
if [ -n "${DETOUR_CRX_KEY:-}" ]; then
  : "${DETOUR_CRX_URL:?DETOUR_CRX_URL: where detour.crx and updates.xml will be served from}"
  ver=$(node -p "require('./extension/dist/chrome-store/manifest.json').version")
  node extension/crx3.mjs --zip "$DIST/detour-extension-$VERSION-chrome-web-store.zip" --key "$DETOUR_CRX_KEY" \
    --out "$DIST/detour.crx" --updates "$DIST/updates.xml" --version "$ver" --codebase "${DETOUR_CRX_URL%/}/detour.crx"
fi
