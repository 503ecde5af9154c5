#!/usr/bin/env bash
# `make run`: the product on this machine, for real.
#  - a hub on 127.0.0.1 with SQLite in .run/hub (example organisations, an
#    enrolment code and a dashboard account are made once and printed once);
#  - the native host registered for the browsers found (per user);
#  - this user's helper enrolled with the hub and its agent started;
#  - what to do next.
# Ctrl-C stops the hub and the agent. A second `make run` reuses .run/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
run=$root/.run
hubdata=$run/hub
addr=${DETOUR_ADDR:-127.0.0.1:8080}
hub="http://$addr"
org=${DETOUR_ORG:-example-borough}
mkdir -p "$run"
chmod 700 "$run"

json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log(v[process.argv[1]]??"")})' "$1"; }
server() { "$root/bin/detour-server" "$@"; }
detour() { "$root/bin/detour" "$@"; }

if [ ! -f "$run/setup.json" ]; then
  echo "First run: setting up a hub in $hubdata"
  server admin --data "$hubdata" catalog import --examples >/dev/null
  code=$(server admin --data "$hubdata" enrol-code create "$org" --json | json code)
  admin=$(server admin --data "$hubdata" user add admin@example.org --role sector-admin --json | json password)
  orgadmin=$(server admin --data "$hubdata" user add it@borough.example --role org-admin --org "$org" --json | json password)
  umask 077
  cat >"$run/setup.json" <<JSON
{"org": "$org", "code": "$code", "admin": "admin@example.org", "admin_password": "$admin",
 "org_admin": "it@borough.example", "org_admin_password": "$orgadmin"}
JSON
  fresh=1
else
  fresh=0
fi
get() { json "$1" <"$run/setup.json"; }

if curl -fsS -o /dev/null "$hub/api/v1/keys" 2>/dev/null; then
  echo "Something already answers on $addr: stop it or set DETOUR_ADDR=127.0.0.1:PORT" >&2
  exit 1
fi
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "Stopping Detour..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "Stopped. Data kept in $run (make run again to reuse it; rm -rf .run to start afresh)."
}
trap cleanup INT TERM EXIT

server serve --addr "$addr" --data "$hubdata" >"$run/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$hub/api/v1/keys" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$hub/api/v1/keys" || { echo "The hub did not start; see $run/hub.log" >&2; exit 1; }

detour install || echo "(no browser configuration folder found yet: run 'bin/detour install' after first starting your browser)"

# Start the agent before enrolling, so that `detour enrol` talks to this
# agent instead of starting a detached one that Ctrl-C would not stop. If
# an agent was already running (a browser started it), that one serves.
detour agent --hub "$hub" >>"$run/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
for _ in $(seq 1 50); do
  detour doctor 2>/dev/null | grep -q '^OK *agent' && break
  sleep 0.1
done
kill -0 "$agent_pid" 2>/dev/null || echo "(an agent was already running for you; it keeps serving after Ctrl-C)"
if [ -n "${DETOUR_HOME:-}" ]; then cfg=$DETOUR_HOME/config/config.json; else cfg=${XDG_CONFIG_HOME:-$HOME/.config}/detour/config.json; fi
if [ "$fresh" = 1 ] || ! grep -q '"org"' "$cfg" 2>/dev/null; then
  detour enrol --hub "$hub" --code "$(get code)" || echo "(enrolment failed: see above; reporting needs it)"
fi

cat <<TXT

Detour is running.
  Hub and IT dashboard:  $hub/
    sector admin:        $(get admin)   password: $(get admin_password)
    organisation admin:  $(get org_admin)   password: $(get org_admin_password)   ($(get org))
  Extension (unpacked):
    Chrome / Chromium / Edge: open chrome://extensions, turn on Developer mode,
                              "Load unpacked" and choose $root/extension/dist/chrome
    Firefox:                  open about:debugging#/runtime/this-firefox, "Load Temporary Add-on",
                              and choose $root/extension/dist/firefox/manifest.json
  Check the helper:      bin/detour doctor
  Try a diagnosis:       bin/detour probe https://zoom.us/
  Logs:                  $run/hub.log, $run/agent.log
  (The passwords are kept in $run/setup.json, readable only by you.)

Press Ctrl-C to stop.
TXT
wait
