#!/usr/bin/env bash
# Prints the path of nfpm (the .deb/.rpm builder), installing the pinned
# version into a per-user tool cache the first time. v2.45.0 is the newest
# that installs through this project's module proxy (later ones need modules
# it refuses); it is a build tool, so it stays out of go.mod.
set -euo pipefail
export PATH="/usr/local/go/bin:$PATH"
NFPM_VERSION=v2.45.0
dir="${XDG_CACHE_HOME:-$HOME/.cache}/detour-tools/nfpm-$NFPM_VERSION"
if [ ! -x "$dir/nfpm" ]; then
  echo "nfpm: installing $NFPM_VERSION into $dir" >&2
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION" >&2
fi
echo "$dir/nfpm"
