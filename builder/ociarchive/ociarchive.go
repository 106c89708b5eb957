// Package ociarchive writes a container image the builder bakes into a root (the Kubernetes pod
// sandbox image) as an OCI image layout tarball: one uncompressed layer, every timestamp and owner
// fixed, so the same files give the same bytes and the same digests on every build.
package ociarchive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationImageName is containerd's annotation for an image's full name in an index; its
// importer names the image after it (and after org.opencontainers.image.ref.name, the tag, only
// when it is missing).
const AnnotationImageName = "io.containerd.image.name"

// File is one regular file of the image's layer.
type File struct {
	Path string // absolute, clean path in the image
	Mode int64  // permission bits; parent directories are made with 0755
	Data []byte
}

// Image is what the archive holds.
type Image struct {
	// Name is the image's full reference, "host/repository:tag".
	Name       string
	GOARCH     string // the image's platform: linux/GOARCH
	Entrypoint []string
	User       string // "uid:gid" (numeric: the image has no /etc/passwd)
	Files      []File
}

// epoch is every entry's modification time: a build date in the image would change its digest.
var epoch = time.Unix(0, 0).UTC()

// Write writes img as an OCI image layout tarball. Errors name the image and the file at fault.
func Write(w io.Writer, img Image) error {
	if err := write(w, img); err != nil {
		return fmt.Errorf("ociarchive: %s: %w", img.Name, err)
	}
	return nil
}

func write(w io.Writer, img Image) error {
	tag, err := tagOf(img.Name)
	if err != nil {
		return err
	}
	if img.GOARCH == "" {
		return errors.New("no architecture")
	}
	layer, err := layerTar(img.Files)
	if err != nil {
		return err
	}
	layerDesc := descriptor(ocispec.MediaTypeImageLayer, layer)
	config, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: img.GOARCH, OS: "linux"},
		Config:   ocispec.ImageConfig{User: img.User, Entrypoint: img.Entrypoint},
		// Uncompressed, so the layer's digest is its diff ID.
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layerDesc.Digest}},
	})
	if err != nil {
		return err
	}
	configDesc := descriptor(ocispec.MediaTypeImageConfig, config)
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := descriptor(ocispec.MediaTypeImageManifest, manifest)
	manifestDesc.Platform = &ocispec.Platform{Architecture: img.GOARCH, OS: "linux"}
	manifestDesc.Annotations = map[string]string{
		AnnotationImageName: img.Name,
		// The OCI layout's convention is the tag alone (as containerd's exporter writes it).
		ocispec.AnnotationRefName: tag,
	}
	index, err := json.Marshal(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}
	layout, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	if err := dir(tw, "blobs/"); err != nil {
		return err
	}
	if err := dir(tw, "blobs/sha256/"); err != nil {
		return err
	}
	blobs := [][]byte{config, layer, manifest}
	slices.SortFunc(blobs, func(a, b []byte) int {
		return strings.Compare(digest.FromBytes(a).Encoded(), digest.FromBytes(b).Encoded())
	})
	for _, b := range blobs {
		if err := file(tw, "blobs/sha256/"+digest.FromBytes(b).Encoded(), 0o644, b); err != nil {
			return err
		}
	}
	if err := file(tw, ocispec.ImageIndexFile, 0o644, index); err != nil {
		return err
	}
	if err := file(tw, ocispec.ImageLayoutFile, 0o644, layout); err != nil {
		return err
	}
	return tw.Close()
}

// tagOf checks that name is "repository:tag" and returns the tag.
func tagOf(name string) (string, error) {
	i := strings.LastIndexByte(name, ':')
	if i <= 0 || strings.Contains(name[i:], "/") || strings.Contains(name, "@") || name[i+1:] == "" {
		return "", fmt.Errorf("name %q: want repository:tag", name)
	}
	return name[i+1:], nil
}

func descriptor(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// layerTar is the layer: the files in path order, after the directories above them.
func layerTar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{} // files
	dirs := map[string]bool{}
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range sorted {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("file %q: want a clean absolute path", f.Path)
		}
		if seen[f.Path] || dirs[f.Path] {
			return nil, fmt.Errorf("file %s: listed twice, or also a directory", f.Path)
		}
		if f.Mode&^0o7777 != 0 {
			return nil, fmt.Errorf("file %s: mode %o: want permission bits only", f.Path, f.Mode)
		}
		rel := strings.TrimPrefix(f.Path, "/")
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if seen["/"+d] {
				return nil, fmt.Errorf("file %s: /%s is a file", f.Path, d)
			}
			if dirs["/"+d] {
				continue
			}
			dirs["/"+d] = true
			if err := dir(tw, d+"/"); err != nil {
				return nil, err
			}
		}
		seen[f.Path] = true
		if err := file(tw, rel, f.Mode, f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func dir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR})
}

func file(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)),
		ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
