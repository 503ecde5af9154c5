#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests on a Unix socket and
# 127.0.0.1:$PGPORT, and prints the DSN. `scripts/pg.sh stop DIR` stops it.
# initdb refuses to run as root, so as root the cluster runs as "postgres".
set -euo pipefail
if [ "${1:-}" = stop ]; then
  dir=$2
  runas=(); [ "$(id -u)" -eq 0 ] && runas=(runuser -u postgres --)
  "${runas[@]}" "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/detour-pg.XXXXXX)
port=${PGPORT:-$(shuf -i 40000-59999 -n 1)}
runas=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$dir"
  runas=(runuser -u postgres --)
fi
"${runas[@]}" "$bin/initdb" -D "$dir/data" -U detour --auth=trust -E UTF8 >/dev/null
"${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null
"${runas[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U detour detour_test
echo "DIR=$dir"
echo "DSN=postgres://detour@127.0.0.1:$port/detour_test?sslmode=disable"
