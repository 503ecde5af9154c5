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
# The hub's container image is run with runc (server/deploy/ociimage), which
# needs root; CI runs as root.
[ "$(id -u)" = 0 ] && export DETOUR_TEST_IMAGE=1
trap 'scripts/pg.sh stop "$pgdir"' EXIT

# Each suite's log goes to test-results/; the closing line adds up the tests
# (Go tests and subtests, node tests) across all three suites.
tests_passed=0; tests_failed=0; suites_failed=0
suite() { # name, log, command...
  local name=$1 log=$2; shift 2
  echo "=== $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] && echo "--- $name: ok" || { echo "--- $name: FAILED"; suites_failed=$((suites_failed+1)); }
}
count_go() {
  tests_passed=$((tests_passed + $(grep -cE '^\s*--- PASS' "$1")))
  tests_failed=$((tests_failed + $(grep -cE '^\s*--- FAIL' "$1")))
}
count_node() {
  local p f
  p=$(sed -n 's/^ℹ pass //p' "$1" | tail -1); f=$(sed -n 's/^ℹ fail //p' "$1" | tail -1)
  tests_passed=$((tests_passed + ${p:-0})); tests_failed=$((tests_failed + ${f:-0}))
}

# Go tests run inside a private D-Bus session with an unlocked gnome-keyring,
# so the keyring tests talk to a real Secret Service, and under the race
# detector (1.3-1.6 times the plain run's time here). test/hubcluster runs
# without it: its hubs are separate binaries the detector never sees, and the
# slowed flood clients only made its load test's timing flaky. The verbose
# log stays in test-results/go-test.log; the screen shows packages and failures.
echo "=== go test"
dbus-run-session -- sh -c \
  'echo -n detour-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
   rc=0
   go test -race -v -count=1 -timeout 25m $(go list ./... | grep -v "/test/hubcluster$") >test-results/go-test.log 2>&1 || rc=1
   go test -v -count=1 -timeout 10m ./test/hubcluster >>test-results/go-test.log 2>&1 || rc=1
   exit $rc'
rc=$?
grep -E '^(ok|FAIL|panic:)' test-results/go-test.log
# For each failure, the lines that led up to it.
grep -B 40 -E '^\s*--- FAIL|^panic:' test-results/go-test.log | tail -n 400
count_go test-results/go-test.log
[ "$rc" -eq 0 ] && echo "--- go test: ok" || { echo "--- go test: FAILED"; suites_failed=$((suites_failed+1)); }

# The release packages (test/packages): the .deb installed, upgraded and
# removed for real with dpkg (only as root on Debian; it changes this
# machine's /etc and /usr/bin for a few seconds, so it runs after the other Go
# tests), the .rpm read back, and the macOS archives with detour built for
# darwin/amd64 and darwin/arm64.
suite "linux packages" test-results/packages.log \
  env DETOUR_TEST_PACKAGES=1 go test -v -count=1 -timeout 10m ./test/packages/
count_go test-results/packages.log

# Windows: every package builds and vets for GOOS=windows (cgo-free, tray
# included), then the MSI from scripts/dist.d/windows.sh is installed under
# Wine in a throwaway prefix (test/wine): registry read back, hello through
# detour.exe and the named pipe, enrol and a report to a loopback hub,
# uninstall leaves nothing.
suite "windows (build, vet, Wine)" test-results/windows.log \
  bash -c 'GOOS=windows CGO_ENABLED=0 go build ./... && GOOS=windows go vet ./... && DETOUR_TEST_WINE=1 go test -v -count=1 -timeout 10m ./test/wine/'
count_go test-results/windows.log

suite "node unit tests" test-results/node-unit.log \
  node --test --test-reporter=spec extension/test/unit/ shared/protocol/test/ shared/catalog/test/
count_node test-results/node-unit.log
suite "browser tests" test-results/browser.log \
  node --test --test-concurrency=1 --test-reporter=spec test/browser/
count_node test-results/browser.log

[ "$suites_failed" -gt 0 ] && [ "$tests_failed" -eq 0 ] && tests_failed=$suites_failed  # a suite that failed without a failing test (build, crash)
echo "$tests_passed passed, $tests_failed failed"
[ "$suites_failed" -eq 0 ]
