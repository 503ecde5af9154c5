package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTheHubsContainerfile(t *testing.T) {
	s := parseFile(t)
	want := &Spec{
		Copies: []Copy{
			{Src: "bin/detour-server", Dest: "/detour-server"},
			{Src: "server/deploy/data.keep", Dest: "/data/.keep", UID: 65532, GID: 65532},
		},
		User:       "65532:65532",
		Env:        []string{"DETOUR_DATA=/data", "DETOUR_MASTER_KEY_FILE=/run/secrets/detour-master-key", "DETOUR_LOG_FORMAT=json"},
		Exposed:    []string{"8080/tcp"},
		Entrypoint: []string{"/detour-server", "serve", "--addr", "0.0.0.0:8080"},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("parsed %+v\nwant %+v", s, want)
	}
}

// An instruction the builder does not know is refused, never skipped: the
// image would otherwise differ from what the Containerfile says.
func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ name, file, want string }{
		{"a base image", "FROM debian:12\nENTRYPOINT [\"/x\"]", "only FROM scratch"},
		{"RUN", "FROM scratch\nRUN echo hi\nENTRYPOINT [\"/x\"]", "RUN is not an instruction"},
		{"shell-form entrypoint", "FROM scratch\nENTRYPOINT /x serve", "exec form"},
		{"COPY --from", "FROM scratch\nCOPY --from=build /a /a\nENTRYPOINT [\"/x\"]", "only --chown"},
		{"named owner", "FROM scratch\nCOPY --chown=detour a /a\nENTRYPOINT [\"/x\"]", "numeric UID:GID"},
		{"copy to a folder", "FROM scratch\nCOPY a /data/\nENTRYPOINT [\"/x\"]", "destination file"},
		{"ENV without =", "FROM scratch\nENV A B\nENTRYPOINT [\"/x\"]", "KEY=value"},
		{"before FROM", "USER 1\nFROM scratch\nENTRYPOINT [\"/x\"]", "before FROM"},
		{"no entrypoint", "FROM scratch\nUSER 1", "no ENTRYPOINT"},
		{"dangling continuation", "FROM scratch\nENTRYPOINT [\"/x\"]\nENV A=1 \\", "continued line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// testContext is a build context with a small executable in place of the
// hub's binary.
func testContext(t *testing.T, binary string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "server/deploy"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "bin/detour-server"), []byte(binary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server/deploy/data.keep"), []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// parseFile parses the hub's Containerfile.
func parseFile(t *testing.T) *Spec {
	t.Helper()
	f, err := os.Open("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t *testing.T, ctx string, o Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(&b, parseFile(t), ctx, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// untar reads a tar (gzip'd or not) into name → entry.
func untar(t *testing.T, b []byte) map[string]*tar.Header {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
		r = zr
	}
	out := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = h
	}
}

func file(t *testing.T, archive []byte, name string) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the archive: %v", name, err)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}

// TestBuildIsReproducibleAndMinimal: the same inputs give the same bytes;
// the layer holds only the binary and the hub user's data folder, owned as
// the Containerfile says, with no shell and no names; the config runs as the
// non-root user.
func TestBuildIsReproducibleAndMinimal(t *testing.T) {
	ctx := testContext(t, "#!not really a binary\n")
	o := Options{Name: "detour-server", Tag: "1.2.3", Arch: "amd64", Created: time.Unix(1764000000, 0).UTC()}
	a, b := build(t, ctx, o), build(t, ctx, o)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same inputs differ")
	}
	o2 := o
	o2.Created = o.Created.Add(time.Second)
	if bytes.Equal(a, build(t, ctx, o2)) {
		t.Fatal("the build time is not in the image")
	}

	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	json.Unmarshal(file(t, a, "index.json"), &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "1.2.3" {
		t.Fatalf("index %+v", index)
	}
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	json.Unmarshal(file(t, a, blobPath(index.Manifests[0].Digest)), &manifest)
	var cfg struct {
		Config struct {
			User       string
			Entrypoint []string
		} `json:"config"`
	}
	json.Unmarshal(file(t, a, blobPath(manifest.Config.Digest)), &cfg)
	if cfg.Config.User != "65532:65532" || cfg.Config.Entrypoint[0] != "/detour-server" {
		t.Fatalf("config %+v", cfg)
	}
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	json.Unmarshal(file(t, a, "manifest.json"), &docker)
	if len(docker) != 1 || docker[0].Config != blobPath(manifest.Config.Digest) || !slices.Equal(docker[0].RepoTags, []string{"detour-server:1.2.3"}) {
		t.Fatalf("manifest.json %+v", docker)
	}

	layer := untar(t, file(t, a, blobPath(manifest.Layers[0].Digest)))
	var names []string
	for n, h := range layer {
		names = append(names, n)
		if h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(o.Created) {
			t.Errorf("%s: names %q/%q, time %v", n, h.Uname, h.Gname, h.ModTime)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"data/", "data/.keep", "detour-server"}) {
		t.Fatalf("layer holds %v", names)
	}
	if h := layer["detour-server"]; h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("binary: mode %o uid %d", h.Mode, h.Uid)
	}
	if h := layer["data/"]; h.Uid != 65532 || h.Gid != 65532 {
		t.Errorf("data folder owned by %d:%d, want the hub's user", h.Uid, h.Gid)
	}
}
