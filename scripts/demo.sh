#!/usr/bin/env bash
# `make demo`: Detour on a simulated filtered network (test/demo/demo.mjs).
# A loopback network that blocks catalog tools the way real filters do (a
# Zscaler block page, a DNS block, a refused proxy tunnel), a hub with the
# example organisations (demo: k=1), an enrolled helper and Chromium with the
# extension. With a display the browser opens for you to try; without one
# (or with --headless) the story runs by itself and writes
# test-results/demo-*.png. Ctrl-C stops everything. Data and logs: .run/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

# `make demo` has built bin/ and the extension; the test network's command
# is not part of `make build`, so build it here (quick when up to date).
[ -x bin/detour ] && [ -x bin/detour-server ] && [ -f extension/dist/chrome/manifest.json ] || make build
CGO_ENABLED=0 go build -o bin/detour-testnet ./test/testnet/cmd/detour-testnet
[ -d node_modules/playwright-core ] || { echo "demo: node_modules missing: run 'make deps' first" >&2; exit 1; }

exec node test/demo/demo.mjs "$@"
