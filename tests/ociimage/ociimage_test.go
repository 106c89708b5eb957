package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var probe = Image{
	Ref:        "ballast.test/probe:1",
	Files:      []File{{Path: "/bin/probe", Mode: 0o755, Data: []byte("\x7fELF not really")}, {Path: "/etc/probe.conf", Mode: 0o644, Data: []byte("x=1\n")}},
	Entrypoint: []string{"/bin/probe"},
	Cmd:        []string{"--all"},
	Env:        []string{"PATH=/bin"},
	User:       "1000:1000",
}

// Both formats go through containerd's own importer (what `ctr images import` and the runtime
// use) into a content store: the image it finds must be ours, files and configuration.
func TestImportedByContainerd(t *testing.T) {
	for _, f := range []struct {
		name  string
		write func(io.Writer, Image) error
	}{{"oci layout", WriteOCI}, {"docker save", WriteDocker}} {
		t.Run(f.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := f.write(&buf, probe); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			store, err := local.NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			idx, err := archive.ImportIndex(ctx, store, bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("containerd refuses the archive: %v", err)
			}
			var index ocispec.Index
			readJSON(t, ctx, store, idx, &index)
			if len(index.Manifests) != 1 {
				t.Fatalf("index %+v", index)
			}
			if name := index.Manifests[0].Annotations[images.AnnotationImageName]; name != "" && name != probe.Ref {
				t.Errorf("image name %q, want %q", name, probe.Ref)
			}
			mf, err := images.Manifest(ctx, store, index.Manifests[0], platforms.Only(platforms.MustParse("linux/amd64")))
			if err != nil {
				t.Fatal(err)
			}
			var cfg ocispec.Image
			readJSON(t, ctx, store, mf.Config, &cfg)
			if cfg.Config.User != "1000:1000" || cfg.Config.Entrypoint[0] != "/bin/probe" || cfg.Config.Cmd[0] != "--all" || len(cfg.RootFS.DiffIDs) != 1 {
				t.Errorf("config %+v", cfg)
			}
			if len(mf.Layers) != 1 {
				t.Fatalf("layers %+v", mf.Layers)
			}
			files := layerFiles(t, ctx, store, mf.Layers[0])
			if string(files["bin/probe"]) != "\x7fELF not really" || string(files["etc/probe.conf"]) != "x=1\n" {
				t.Errorf("layer files %q", files)
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteOCI(&a, probe); err != nil {
		t.Fatal(err)
	}
	if err := WriteOCI(&b, probe); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two archives of the same image differ")
	}
	bad := probe
	bad.Files = []File{{Path: "bin/relative", Data: nil}}
	if err := WriteOCI(io.Discard, bad); err == nil {
		t.Error("a relative path was accepted")
	}
}

func readJSON(t *testing.T, ctx context.Context, store content.Store, d ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.ReadBlob(ctx, store, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func layerFiles(t *testing.T, ctx context.Context, store content.Store, d ocispec.Descriptor) map[string][]byte {
	t.Helper()
	ra, err := store.ReaderAt(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	r, err := images.DiffCompression(ctx, d.MediaType)
	if err != nil {
		t.Fatal(err)
	}
	var rd io.Reader = content.NewReader(ra)
	if r == "gzip" {
		gz, err := gzipReader(rd)
		if err != nil {
			t.Fatal(err)
		}
		rd = gz
	}
	files := map[string][]byte{}
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[h.Name] = b
		}
	}
}

func gzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }
