# Detour: `make run` runs the product, `make test` runs every test.
# Both install what they need first (scripts/deps.sh).
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
# The Go release every build and test uses: go1.26.11 carries the standard
# library's security fixes that govulncheck finds called in go1.26.8 (net/http,
# html/template, crypto/tls, crypto/x509). The go command fetches it from the
# module proxy once (about 76 MB); `make GOTOOLCHAIN=local` uses the machine's own.
export GOTOOLCHAIN := go1.26.11
# A release version (v1.2.3 tags), else 0.1.0-dev.<commit>: the hub refuses
# reports whose client_version is not shaped like 1.2.3 or 1.2.3-pre, so a
# bare commit hash would make every report fail (server/reports).
VERSION ?= $(shell git describe --tags --match 'v[0-9]*.[0-9]*.[0-9]*' --dirty 2>/dev/null || echo 0.1.0-dev.$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$$(git diff --quiet HEAD 2>/dev/null || echo -dirty))
LDFLAGS := -s -w -X github.com/detour-project/detour/shared/version.Version=$(VERSION)
# Extension IDs the native host admits beyond shared/ids' defaults, e.g.
# DETOUR_EXTENSION_IDS=chrome-web-store=ID,edge-add-ons=ID (shared/ids).
ifneq ($(strip $(DETOUR_EXTENSION_IDS)),)
LDFLAGS += -X github.com/detour-project/detour/shared/ids.Build=$(DETOUR_EXTENSION_IDS)
endif

.PHONY: all build go extension run demo test bench lint clean deps dist vulncheck macos-pkg

all: build

deps:
	scripts/deps.sh

# extension first: it also compiles govuk.css into server/dashboard/assets, which
# the detour-server binary embeds.
build: extension go

go:
	$(if $(strip $(DETOUR_EXTENSION_IDS)),go run ./shared/ids/checkids '$(DETOUR_EXTENSION_IDS)')
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/detour ./helper/cmd/detour
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/detour-server ./server/cmd/detour-server
	CGO_ENABLED=1 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/detour-tray ./helper/cmd/detour-tray

# A fresh clone has no node_modules: say so in one line rather than let Node
# end in a stack trace.
extension:
	$(if $(and $(shell command -v node),$(wildcard node_modules/sass/package.json),$(wildcard node_modules/govuk-frontend/package.json)),,$(error Node.js or the npm packages (node_modules) are missing: run `make deps` first))
	node extension/build.mjs

run: deps build
	scripts/run.sh

demo: deps build
	scripts/demo.sh

test:
	scripts/test.sh

bench: deps build
	scripts/bench.sh

# dist/: the MSI, .deb, .rpm, macOS archive, store zips and SHA256SUMS (scripts/dist.sh).
dist: deps build
	VERSION=$(VERSION) scripts/dist.sh

# The macOS .pkg: on a Mac only (pkgbuild); see installer/macos/README.md.
macos-pkg:
	VERSION=$(VERSION) scripts/macos-pkg.sh

# govulncheck against a vulnerability database built here from the
# golang.org/x/vulndb module (vuln.go.dev itself cannot be reached from these
# machines): scripts/vulncheck.sh.
vulncheck:
	scripts/vulncheck.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	npx web-ext lint --source-dir extension/dist/firefox --self-hosted
	npx web-ext lint --source-dir extension/dist/amo

clean:
	rm -rf bin dist extension/dist test-results
	go clean -testcache
