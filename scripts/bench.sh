#!/usr/bin/env bash
# `make bench`: every benchmark, printed as figures and ratios against a
# baseline measured in the same process. Nothing here asserts a time.
#   framing throughput and hello round trip (helper/nativemsg, helper/relay)
#   800 pipelined status requests through the relay vs one at a time (helper/relay)
#   whitelist push to 10,000 WebSocket clients (server/push)
#   fingerprint matching on a 256 KiB page (helper/fingerprint)
#   report intake with token verification, beside a no-op and a verify-only handler, 8 and
#   64 clients; a report group's transaction by size; token signing and verification (server/reports,
#   shared/privacypass)
#   the cluster load test (test/hubcluster): hubs on one PostgreSQL, WebSocket helpers in
#   fleet processes, reports at 1,000/s for 60 s with real tokens, one hub SIGKILLed, a
#   policy change to every helper; 3 hubs at the largest size the descriptor limit allows,
#   and as many hubs as 100,000 helpers need (4-5.5 minutes here, 37-64 s of each
#   scenario minting its 60,000 tokens)
#   dashboard queries at 1M and 10M reports, SQLite and PostgreSQL (server/aggregates)
#   navigation to prompt in Chromium (test/browser/bench-prompt.mjs)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
mkdir -p test-results
# The dashboard queries are measured on PostgreSQL too: a throwaway server,
# as in scripts/test.sh (the dataset is copied into it once per run).
if pgout=$(scripts/pg.sh 2>/dev/null); then
  pgdir=$(echo "$pgout" | sed -n 's/^DIR=//p')
  export DETOUR_BENCH_POSTGRES=$(echo "$pgout" | sed -n 's/^DSN=//p')
  trap 'scripts/pg.sh stop "$pgdir"' EXIT
else
  echo "bench: PostgreSQL did not start; dashboard queries measured on SQLite only"
fi
out=test-results/bench.txt
: >"$out"
echo "== Go benchmarks" | tee -a "$out"
# -benchtime=1x for the heavy set-up benchmarks is chosen inside each
# benchmark (b.N loops); a shared -benchtime keeps the whole run bounded.
go test -run '^$' -bench . -benchmem -benchtime=2s -timeout 40m ./... 2>&1 \
  | grep -vE '^(PASS|ok|\?|goos|goarch|pkg|cpu)' | tee -a "$out"
if [ -f test/browser/bench-prompt.mjs ]; then
  echo "== Chromium: navigation to prompt" | tee -a "$out"
  node test/browser/bench-prompt.mjs 2>&1 | tee -a "$out"
fi
echo "(figures saved in $out)"
