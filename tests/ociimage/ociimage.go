// Package ociimage builds the container images the tests run, from files on this machine (static
// Go programs): an OCI image layout tarball or a `docker save` tarball, one layer, reproducible.
// No registry and no image tool is needed to make them.
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
	"sort"
	"strings"
	"time"
)

// File is one file of the image's single layer.
type File struct {
	Path string // absolute path in the image
	Mode int64  // permission bits; directories are made as needed with 0755
	Data []byte
}

// Image is what an archive holds.
type Image struct {
	// Ref names the image in the archive (org.opencontainers.image.ref.name, RepoTags), e.g.
	// "ballast.test/probe:1".
	Ref        string
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	// Arch is the image's GOARCH-style architecture; "" is amd64.
	Arch string
}

func (img Image) arch() string {
	if img.Arch == "" {
		return "amd64"
	}
	return img.Arch
}

// Program is a File from a binary on this machine, at path in the image.
func Program(hostPath, path string) (File, error) {
	b, err := os.ReadFile(hostPath)
	if err != nil {
		return File{}, fmt.Errorf("ociimage: %w", err)
	}
	return File{Path: path, Mode: 0o755, Data: b}, nil
}

// epoch is every timestamp in the archives: the same input gives the same bytes.
var epoch = time.Unix(0, 0).UTC()

type blob struct {
	mediaType string
	data      []byte
}

func (b blob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (b blob) descriptor() map[string]any {
	return map[string]any{"mediaType": b.mediaType, "digest": b.digest(), "size": len(b.data)}
}

// layer returns the layer as an uncompressed tar and its gzip.
func (img Image) layer() (plain, gz []byte, err error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	files := append([]File(nil), img.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return nil, nil, fmt.Errorf("ociimage: %q is not a clean absolute path", f.Path)
		}
		rel := strings.TrimPrefix(f.Path, "/")
		var parents []string
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return nil, nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.ModTime = epoch
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), z.Bytes(), nil
}

func (img Image) config(diffID string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"architecture": img.arch(),
		"os":           "linux",
		"created":      epoch.Format(time.RFC3339),
		"config": map[string]any{
			"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": img.Env,
			"User": img.User, "WorkingDir": img.WorkingDir,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
}

// WriteOCI writes img as an OCI image layout tarball (index.json, oci-layout, blobs/sha256/...).
func WriteOCI(w io.Writer, img Image) error {
	plain, gz, err := img.layer()
	if err != nil {
		return err
	}
	layer := blob{"application/vnd.oci.image.layer.v1.tar+gzip", gz}
	cfgJSON, err := img.config(blob{data: plain}.digest())
	if err != nil {
		return err
	}
	cfg := blob{"application/vnd.oci.image.config.v1+json", cfgJSON}
	mfJSON, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfg.descriptor(),
		"layers":        []any{layer.descriptor()},
	})
	if err != nil {
		return err
	}
	mf := blob{"application/vnd.oci.image.manifest.v1+json", mfJSON}
	desc := mf.descriptor()
	desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": img.Ref}
	desc["platform"] = map[string]string{"architecture": img.arch(), "os": "linux"}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{desc}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
	}
	for _, b := range []blob{layer, cfg, mf} {
		entries = append(entries, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(b.digest(), "sha256:"), b.data})
	}
	return writeEntries(tw, []string{"blobs/", "blobs/sha256/"}, entries)
}

// WriteDocker writes img as `docker save` does (manifest.json, the config and the layer tar).
func WriteDocker(w io.Writer, img Image) error {
	plain, _, err := img.layer()
	if err != nil {
		return err
	}
	layerID := strings.TrimPrefix(blob{data: plain}.digest(), "sha256:")
	cfgJSON, err := img.config("sha256:" + layerID)
	if err != nil {
		return err
	}
	cfgID := strings.TrimPrefix(blob{data: cfgJSON}.digest(), "sha256:")
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   cfgID + ".json",
		"RepoTags": []string{img.Ref},
		"Layers":   []string{layerID + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	return writeEntries(tw, []string{layerID + "/"}, []struct {
		name string
		data []byte
	}{
		{cfgID + ".json", cfgJSON},
		{layerID + "/layer.tar", plain},
		{"manifest.json", manifest},
	})
}

func writeEntries(tw *tar.Writer, dirs []string, entries []struct {
	name string
	data []byte
}) error {
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	return nil
}
