// Command detour-image builds the hub's container image from
// server/deploy/Containerfile without a container engine (see
// server/deploy/ociimage): `make dist` runs it.
//
//	detour-image -containerfile server/deploy/Containerfile -context . -tag VERSION -o dist/detour-server-VERSION-oci.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/detour-project/detour/server/deploy/ociimage"
)

func main() {
	file := flag.String("containerfile", "server/deploy/Containerfile", "the Containerfile")
	ctxDir := flag.String("context", ".", "the build context its COPY sources are read from")
	name := flag.String("name", "detour-server", "image name")
	tag := flag.String("tag", "dev", "image tag")
	arch := flag.String("arch", runtime.GOARCH, "the binary's architecture")
	out := flag.String("o", "", "output tar (OCI image layout, with docker's manifest.json)")
	flag.Parse()
	if err := run(*file, *ctxDir, *out, ociimage.Options{Name: *name, Tag: *tag, Arch: *arch, Created: sourceDate()}); err != nil {
		fmt.Fprintln(os.Stderr, "detour-image:", err)
		os.Exit(1)
	}
}

// sourceDate is SOURCE_DATE_EPOCH (reproducible builds), else the Unix epoch.
func sourceDate() time.Time {
	if v, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(v, 0).UTC()
	}
	return time.Unix(0, 0).UTC()
}

func run(file, ctxDir, out string, o ociimage.Options) error {
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	spec, err := ociimage.Parse(f)
	f.Close()
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := ociimage.Build(w, spec, ctxDir, o); err != nil {
		w.Close()
		os.Remove(tmp)
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
