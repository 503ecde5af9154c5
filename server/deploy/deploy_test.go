// Package deploy holds the hub's systemd unit and container image
// definition; this test keeps them in step with the binary they run.
package deploy

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/detour-project/detour/server/cli"
)

// serveFlags are the flags `detour-server serve` accepts, read from its own
// usage text.
func serveFlags(t *testing.T) map[string]bool {
	var out, errb bytes.Buffer
	// Help goes to stdout (asking for it is not an error); either is read.
	cli.Main([]string{"serve", "-h"}, &out, &errb)
	usage := out.String() + errb.String()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(usage, -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("could not read serve's flags from %q", usage)
	}
	return flags
}

func read(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnitAndImageRunRealFlags(t *testing.T) {
	flags := serveFlags(t)
	flagRE := regexp.MustCompile(`--([a-z0-9-]+)`)
	unit := read(t, "detour-server.service")
	image := read(t, "Containerfile")
	var execStart, entry string
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			execStart = l
		}
	}
	for _, l := range strings.Split(image, "\n") {
		if strings.HasPrefix(l, "ENTRYPOINT") {
			entry = l
		}
	}
	for name, line := range map[string]string{"unit ExecStart": execStart, "image ENTRYPOINT": entry} {
		if !strings.Contains(line, "serve") {
			t.Errorf("%s does not run serve: %q", name, line)
		}
		for _, m := range flagRE.FindAllStringSubmatch(line, -1) {
			if !flags[m[1]] {
				t.Errorf("%s uses --%s, which serve does not accept", name, m[1])
			}
		}
	}
	for _, want := range []string{"User=detour", "NoNewPrivileges=yes", "DETOUR_MASTER_KEY_FILE=", "DETOUR_LOG_FORMAT=json", "KillSignal=SIGTERM"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
	for _, want := range []string{"FROM scratch", "USER 65532:65532", "COPY bin/detour-server", "server/deploy/data.keep"} {
		if !strings.Contains(image, want) {
			t.Errorf("Containerfile lacks %s", want)
		}
	}
	if strings.Contains(image, "USER root") || strings.Contains(image, "USER 0") {
		t.Error("the image must not run as root")
	}
	if _, err := os.Stat("data.keep"); err != nil {
		t.Error(err)
	}
	// The image copies the binary that make build makes static.
	mk := read(t, "../../Makefile")
	if !strings.Contains(mk, "CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/detour-server") {
		t.Error("Makefile no longer builds bin/detour-server with CGO_ENABLED=0: the scratch image needs a static binary")
	}
}

// Every environment variable the unit and image set is one the binary reads.
func TestEnvironmentNamesAreRead(t *testing.T) {
	src := read(t, "../cli/cli.go") + read(t, "../cli/serve.go")
	envRE := regexp.MustCompile(`(DETOUR_[A-Z_]+)=`)
	for _, f := range []string{"detour-server.service", "Containerfile"} {
		for _, m := range envRE.FindAllStringSubmatch(read(t, f), -1) {
			if !strings.Contains(src, `"`+m[1]+`"`) {
				t.Errorf("%s sets %s, which the server does not read", f, m[1])
			}
		}
	}
}
