#!/usr/bin/env bash
# Runs every Detour test: Go (unit, integration, PostgreSQL, keyring, tray),
# JavaScript (protocol vectors, extension units) and the browser tests
# (Chromium and Firefox with the real extension, relay, agent and hub).
# Installs what it needs first. Prints a closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
scripts/deps.sh || { echo "test: installing dependencies failed"; exit 1; }
make build || { echo "test: build failed"; exit 1; }
mkdir -p test-results

pgout=$(scripts/pg.sh) || { echo "test: could not start PostgreSQL"; exit 1; }
pgdir=$(echo "$pgout" | sed -n 's/^DIR=//p')
export DETOUR_TEST_POSTGRES=$(echo "$pgout" | sed -n 's/^DSN=//p')
# No test may send a packet beyond loopback: the probe refuses any other
# address for the whole run (helper/probe/guard.go).
export DETOUR_PROBE_LOOPBACK_ONLY=1
trap 'scripts/pg.sh stop "$pgdir"' EXIT

passed=0; failed=0
step() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed+1)); echo "--- $name: ok"; else failed=$((failed+1)); echo "--- $name: FAILED"; fi
}

# Go tests run inside a private D-Bus session with an unlocked gnome-keyring,
# so the keyring tests talk to a real Secret Service.
step "go test" dbus-run-session -- sh -c \
  'echo -n detour-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
   go test -count=1 -timeout 25m ./... >test-results/go-test.log 2>&1; rc=$?
   grep -vE "^(ok|\?) " test-results/go-test.log | tail -n 200; grep -cE "^ok " test-results/go-test.log | sed "s/$/ Go packages ok/"
   exit $rc'
step "node unit tests" node --test --test-reporter=spec extension/test/unit/ shared/protocol/test/ shared/catalog/test/
step "browser tests" node --test --test-concurrency=1 --test-reporter=spec test/browser/

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
