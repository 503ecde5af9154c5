#!/usr/bin/env bash
# dist part: the hub's container image, built from server/deploy/Containerfile
# without a container engine (server/cmd/detour-image, so a build machine needs
# none): detour-server-V-oci-ARCH.tar, an OCI image layout with docker's
# manifest.json beside it. Load it with `podman load -i`, `docker load -i`
# (Docker 25 or later) or `skopeo copy oci-archive:FILE docker://REGISTRY/…`.
# Reproducible like the packages: the static binary built with -trimpath and
# no build id, every timestamp SOURCE_DATE_EPOCH.
#
# Env (scripts/dist.sh): VERSION, DIST, SOURCE_DATE_EPOCH. DETOUR_IMAGE_ARCHES
# narrows the architectures (default "amd64 arm64").
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
: "${VERSION:?}" "${DIST:?}" "${SOURCE_DATE_EPOCH:?}"
export SOURCE_DATE_EPOCH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$DIST"
go build -o "$work/detour-image" ./server/cmd/detour-image
ldflags="-s -w -buildid= -X github.com/detour-project/detour/shared/version.Version=$VERSION"
for arch in ${DETOUR_IMAGE_ARCHES:-amd64 arm64}; do
  ctx="$work/$arch"
  mkdir -p "$ctx/bin" "$ctx/server/deploy"
  GOOS=linux GOARCH=$arch CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$ctx/bin/detour-server" ./server/cmd/detour-server
  cp server/deploy/data.keep "$ctx/server/deploy/data.keep"
  "$work/detour-image" -containerfile server/deploy/Containerfile -context "$ctx" -tag "${VERSION#v}" -arch "$arch" \
    -o "$DIST/detour-server-${VERSION#v}-oci-$arch.tar"
done
