#!/usr/bin/env bash
# `make vulncheck`: govulncheck over every package, offline.
#
# vuln.go.dev cannot be reached from the machines we build on ("no such
# host"), but the Go module proxy serves golang.org/x/vulndb, the database's
# own source (data/osv). This builds the v1 database from it with vulndb's
# gendb and points govulncheck at it with -db file://…, so the check is real
# and repeatable: the database version is pinned below; move it forward to
# learn of newer advisories. Exit status is govulncheck's (3: called
# vulnerabilities found).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
VULNDB=${VULNDB:-v0.0.0-20261105234957-e22db6528018}
GOVULNCHECK=${GOVULNCHECK:-v1.9.0}
work=${VULNCHECK_DIR:-${TMPDIR:-/tmp}/detour-vulndb-$VULNDB}
if [ ! -f "$work/db/index/db.json" ]; then
  echo "vulncheck: building the database from golang.org/x/vulndb@$VULNDB"
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { echo "vulncheck: could not download golang.org/x/vulndb@$VULNDB"; exit 1; }
  rm -rf "$work"; mkdir -p "$work"
  cp -r "$src" "$work/src"; chmod -R u+w "$work/src"
  # gendb reads the reports through git, so the copy becomes a repository.
  git -C "$work/src" init -q
  git -C "$work/src" add -A
  git -C "$work/src" -c user.name=vulncheck -c user.email=vulncheck@localhost commit -qm "x/vulndb $VULNDB"
  (cd "$work/src" && go build -o "$work/gendb" ./cmd/gendb && "$work/gendb" -repo . -out "$work/db")
fi
echo "vulncheck: govulncheck $GOVULNCHECK, database x/vulndb@$VULNDB, $(go version | cut -d' ' -f3)"
go run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK" -db "file://$work/db" ./...
