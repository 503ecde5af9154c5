package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Options name the image.
type Options struct {
	Name    string    // repository name, e.g. "detour-server"
	Tag     string    // e.g. the version
	Arch    string    // GOARCH of the binary, e.g. "amd64"
	Created time.Time // every timestamp in the image (SOURCE_DATE_EPOCH), for reproducible builds
}

const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Build writes the image spec describes, its files read from contextDir, as
// an OCI image layout in a tar to w. The same inputs give the same bytes.
func Build(w io.Writer, spec *Spec, contextDir string, o Options) error {
	layer, diffID, err := buildLayer(spec, contextDir, o.Created)
	if err != nil {
		return err
	}
	created := o.Created.UTC().Format(time.RFC3339)
	exposed := map[string]struct{}{}
	for _, p := range spec.Exposed {
		exposed[p] = struct{}{}
	}
	cfg, err := json.Marshal(map[string]any{
		"created":      created,
		"architecture": o.Arch,
		"os":           "linux",
		"config": map[string]any{
			"User":         spec.User,
			"Env":          spec.Env,
			"Entrypoint":   spec.Entrypoint,
			"ExposedPorts": exposed,
			"WorkingDir":   "/",
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]any{{"created": created, "created_by": "server/deploy/ociimage from server/deploy/Containerfile"}},
	})
	if err != nil {
		return fmt.Errorf("ociimage: config: %w", err)
	}
	cfgDesc := describe(mediaConfig, cfg)
	layerDesc := describe(mediaLayer, layer)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        cfgDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return fmt.Errorf("ociimage: manifest: %w", err)
	}
	manDesc := describe(mediaManifest, manifest)
	manDesc.Platform = &platform{Architecture: o.Arch, OS: "linux"}
	manDesc.Annotations = map[string]string{
		"org.opencontainers.image.ref.name": o.Tag,
		"io.containerd.image.name":          o.Name + ":" + o.Tag,
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manDesc},
	})
	if err != nil {
		return fmt.Errorf("ociimage: index: %w", err)
	}
	// docker load reads manifest.json beside the OCI layout (as docker
	// save writes since Docker 25); podman and skopeo read index.json.
	dockerManifest, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(cfgDesc.Digest),
		"RepoTags": []string{o.Name + ":" + o.Tag},
		"Layers":   []string{blobPath(layerDesc.Digest)},
	}})
	if err != nil {
		return fmt.Errorf("ociimage: manifest.json: %w", err)
	}

	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"manifest.json", dockerManifest},
		{blobPath(cfgDesc.Digest), cfg},
		{blobPath(layerDesc.Digest), layer},
		{blobPath(manDesc.Digest), manifest},
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: o.Created, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: o.Created, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	return nil
}

func describe(media string, b []byte) descriptor {
	sum := sha256.Sum256(b)
	return descriptor{MediaType: media, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
}

func blobPath(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// buildLayer makes the one layer: every COPY, with the directories its
// destination needs (owned as the COPY says, as a container engine makes
// them), fixed timestamps and no user or group names. It returns the
// gzip'd layer and the digest of the uncompressed tar (the diff id).
func buildLayer(spec *Spec, contextDir string, mtime time.Time) ([]byte, string, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	entries := map[string]entry{}
	for _, c := range spec.Copies {
		src := filepath.Join(contextDir, filepath.FromSlash(c.Src))
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, "", fmt.Errorf("ociimage: COPY %s: %w", c.Src, err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, "", fmt.Errorf("ociimage: COPY %s: %w", c.Src, err)
		}
		mode := int64(0o644)
		if st.Mode()&0o111 != 0 {
			mode = 0o755
		}
		name := strings.TrimPrefix(path.Clean(c.Dest), "/")
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := entries[d+"/"]; !ok {
				entries[d+"/"] = entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Uid: c.UID, Gid: c.GID}}
			}
		}
		entries[name] = entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: c.UID, Gid: c.GID, Size: int64(len(data))}, data: data}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names) // a directory sorts before what is in it
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, n := range names {
		e := entries[n]
		e.hdr.ModTime, e.hdr.Format = mtime, tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, "", fmt.Errorf("ociimage: layer: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, "", fmt.Errorf("ociimage: layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("ociimage: layer: %w", err)
	}
	sum := sha256.Sum256(raw.Bytes())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", fmt.Errorf("ociimage: layer: %w", err)
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", fmt.Errorf("ociimage: layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, "", fmt.Errorf("ociimage: layer: %w", err)
	}
	return gz.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), nil
}
