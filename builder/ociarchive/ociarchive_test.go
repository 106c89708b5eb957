package ociarchive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/plugins/content/local"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ballast-os/ballast/tests/testutil"
)

var testImage = Image{
	Name:       "localhost/ballast/pause:3.10",
	GOARCH:     "arm64",
	Entrypoint: []string{"/pause"},
	User:       "65535:65535",
	Files:      []File{{Path: "/pause", Mode: 0o755, Data: []byte("\x7fELF pretend")}, {Path: "/etc/x/y", Mode: 0o600, Data: []byte("y")}},
}

func archiveOf(t *testing.T, img Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	a := archiveOf(t, testImage)
	// The files' order in the input does not matter.
	swapped := testImage
	swapped.Files = []File{testImage.Files[1], testImage.Files[0]}
	if b := archiveOf(t, swapped); !bytes.Equal(a, b) {
		t.Fatal("two writes of the same image differ")
	}
	other := testImage
	other.User = "0:0"
	if b := archiveOf(t, other); bytes.Equal(a, b) {
		t.Fatal("a different user gave the same archive")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %s uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Image)
		want string
	}{
		{"no tag", func(i *Image) { i.Name = "localhost/ballast/pause" }, `name "localhost/ballast/pause": want repository:tag`},
		{"port not tag", func(i *Image) { i.Name = "localhost:5000/pause" }, "want repository:tag"},
		{"digest", func(i *Image) { i.Name = "x/pause:1@sha256:00" }, "want repository:tag"},
		{"no arch", func(i *Image) { i.GOARCH = "" }, "no architecture"},
		{"relative file", func(i *Image) { i.Files = []File{{Path: "pause"}} }, `file "pause": want a clean absolute path`},
		{"file twice", func(i *Image) { i.Files = append(i.Files, i.Files[0]) }, "file /pause: listed twice"},
		{"file as dir", func(i *Image) { i.Files = append(i.Files, File{Path: "/pause/x"}) }, "file /pause/x: /pause is a file"},
		{"mode", func(i *Image) { i.Files = []File{{Path: "/p", Mode: 0o100755}} }, "mode 100755"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := testImage
			img.Files = append([]File(nil), testImage.Files...)
			tt.edit(&img)
			err := Write(io.Discard, img)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), img.Name) {
				t.Fatalf("error %v: want it to name %s and contain %q", err, img.Name, tt.want)
			}
		})
	}
}

// containerd's own archive importer (what containerd's Import, and so runtime/images, runs)
// reads the archive back: the image name it records, the platform, the config and the layer.
func TestContainerdImport(t *testing.T) {
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	desc, err := archive.ImportIndex(ctx, store, bytes.NewReader(archiveOf(t, testImage)))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	readJSON(t, store, desc, &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(idx.Manifests))
	}
	m := idx.Manifests[0]
	if got := m.Annotations[images.AnnotationImageName]; got != testImage.Name {
		t.Errorf("image name %q, want %q", got, testImage.Name)
	}
	if got := m.Annotations[ocispec.AnnotationRefName]; got != "3.10" {
		t.Errorf("ref name %q, want the tag", got)
	}
	if m.Platform == nil || m.Platform.Architecture != "arm64" || m.Platform.OS != "linux" {
		t.Errorf("platform %+v", m.Platform)
	}
	var mf ocispec.Manifest
	readJSON(t, store, m, &mf)
	var cfg ocispec.Image
	readJSON(t, store, mf.Config, &cfg)
	if cfg.Config.User != "65535:65535" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/pause" || cfg.Architecture != "arm64" {
		t.Errorf("config %+v", cfg)
	}
	if len(mf.Layers) != 1 || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != mf.Layers[0].Digest {
		t.Fatalf("layers %v, diff IDs %v", mf.Layers, cfg.RootFS.DiffIDs)
	}
	layer, err := content.ReadBlob(ctx, store, mf.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(layer))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "pause" {
			data, _ := io.ReadAll(tr)
			if h.Mode != 0o755 || string(data) != "\x7fELF pretend" {
				t.Errorf("pause: mode %o, data %q", h.Mode, data)
			}
		}
	}
	if got := strings.Join(names, " "); got != "etc/ etc/x/ etc/x/y pause" {
		t.Errorf("layer entries %q", got)
	}
}

func readJSON(t *testing.T, store content.Store, desc ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.ReadBlob(context.Background(), store, desc)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", desc.Digest, err)
	}
}

// skopeo, an independent OCI implementation, reads the archive by its tag.
func TestSkopeo(t *testing.T) {
	skopeo := testutil.Tool(t, "skopeo", "skopeo")
	p := filepath.Join(t.TempDir(), "pause.tar")
	if err := os.WriteFile(p, archiveOf(t, testImage), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(skopeo, "inspect", "--config", "oci-archive:"+p+":3.10").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect --config: %v\n%s", err, out)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("skopeo: %v\n%s", err, out)
	}
	if cfg.Architecture != "arm64" || cfg.Config.User != "65535:65535" || len(cfg.Config.Entrypoint) != 1 {
		t.Errorf("skopeo sees config %s", out)
	}
}
