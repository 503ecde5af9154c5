#!/usr/bin/env bash
# The Windows MSI, built on Linux: dist/detour-VERSION-windows-amd64.msi from
# installer/windows/detour.wxs with wixl (Debian msitools). It holds
# detour.exe and detour-tray.exe (both cgo-free for Windows; the tray is a
# GUI program, no console), the two manifests naming detour.exe beside
# them, HKLM keys for every browser, the sign-in Run entry and the
# policy properties (HUB=, ORG=, REPORT_AUTOMATICALLY=, PROMPTS=,
# ENROLMENT_CODE=, WHITELIST_KEYS=).
#
# Signing: with SIGN_CERT (PEM or DER certificate chain) and SIGN_KEY (its
# private key, PEM), the two .exe files and the MSI are Authenticode-signed
# with osslsigncode (SHA-256, and a timestamp from SIGN_TIMESTAMP_URL when
# set). Without them the build is unsigned and says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
: "${VERSION:?}" "${DIST:?}" "${SOURCE_DATE_EPOCH:?}"
for t in wixl msibuild; do command -v $t >/dev/null || { echo "windows: $t is missing (Debian wixl, msitools; scripts/deps.sh installs them)" >&2; exit 1; }; done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bin=$work/bin; mkdir -p "$bin" "$DIST"

ldflags="-s -w -buildid= -X github.com/detour-project/detour/shared/version.Version=$VERSION"
[ -n "${DETOUR_EXTENSION_IDS:-}" ] && ldflags="$ldflags -X github.com/detour-project/detour/shared/ids.Build=$DETOUR_EXTENSION_IDS"
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bin/detour.exe" ./helper/cmd/detour
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags -H windowsgui" -o "$bin/detour-tray.exe" ./helper/cmd/detour-tray
# The manifests name detour.exe relative to themselves (allowed on Windows by
# Chrome, Edge and Firefox), so they stay right under any INSTALLDIR.
go run -ldflags "$ldflags" ./installer/windows/genmanifest "$bin" detour.exe

# Windows Installer versions are three numbers below 256.65535.65535: the
# release's, without any pre-release part (0.1.0-dev.abc is 0.1.0; a major
# upgrade allows the same version, so each build replaces the last).
msiver=$(echo "${VERSION#v}" | sed -E 's/^([0-9]+)\.([0-9]+)\.([0-9]+).*/\1.\2.\3/')
[[ "$msiver" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || msiver=0.0.0

sign() { # IN: signs the file in place
  osslsigncode sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n "Detour" \
    ${SIGN_TIMESTAMP_URL:+-ts "$SIGN_TIMESTAMP_URL"} -in "$1" -out "$1.signed" >/dev/null
  mv "$1.signed" "$1"
}
signed=
if [ -n "${SIGN_CERT:-}" ] || [ -n "${SIGN_KEY:-}" ]; then
  : "${SIGN_CERT:?SIGN_KEY is set but SIGN_CERT is not}" "${SIGN_KEY:?SIGN_CERT is set but SIGN_KEY is not}"
  command -v osslsigncode >/dev/null || { echo "windows: osslsigncode is missing (Debian osslsigncode)" >&2; exit 1; }
  sign "$bin/detour.exe"; sign "$bin/detour-tray.exe"; signed=1
fi

out="$DIST/detour-${VERSION#v}-windows-amd64.msi"
# wixl takes only relative Source paths: build from the work folder.
cp installer/windows/detour.wxs "$work/"
(cd "$work" && wixl -a x64 -D Version="$msiver" -D FullVersion="$VERSION" -D Bin=bin -o "$out" detour.wxs)
# Each policy value's feature is left out (level 0) unless its property is
# given: the Condition table, which wixl cannot write, added with msibuild.
{
  printf 'Feature_\tLevel\tCondition\ns38\ti2\tS255\nCondition\tFeature_\tLevel\n'
  for p in Hub:HUB Org:ORG Report:REPORT_AUTOMATICALLY Prompts:PROMPTS Code:ENROLMENT_CODE Keys:WHITELIST_KEYS; do
    printf 'Policy%s\t0\tNOT %s\n' "${p%%:*}" "${p#*:}"
  done
} > "$work/Condition.idt"
# The Upgrade table again, as wixl drops IncludeMaximum: a rebuild of the
# same version (768: minimum and maximum inclusive) replaces the one installed;
# a newer one is only detected (2).
code={F93C43B9-8A93-4B0A-A39D-854E6541D41B}
printf 'UpgradeCode\tVersionMin\tVersionMax\tLanguage\tAttributes\tRemove\tActionProperty\ns38\tS20\tS20\tS255\ti4\tS255\ts72\nUpgrade\tUpgradeCode\tVersionMin\tVersionMax\tLanguage\tAttributes\n%s\t0.0.0\t%s\t\t768\t\tOLDERDETOUR\n%s\t%s\t\t\t2\t\tNEWERDETOUR\n' \
  "$code" "$msiver" "$code" "$msiver" > "$work/Upgrade.idt"
msibuild "$out" -i "$work/Condition.idt" -i "$work/Upgrade.idt"
if [ -n "$signed" ]; then
  sign "$out"
  echo "windows: $(basename "$out") (signed with $(basename "$SIGN_CERT"))"
else
  echo "windows: $(basename "$out") (UNSIGNED: set SIGN_CERT and SIGN_KEY to Authenticode-sign the binaries and the MSI)"
fi
