package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/builder/programs"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/gocomponents"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestInstallsKubelet(t *testing.T) {
	kubelet := gocomponents.Built{Binaries: []gocomponents.Binary{{Name: "kubelet", InstallPath: contract.KubeletPath}}}
	testOnly := gocomponents.Built{Binaries: []gocomponents.Binary{{Name: "kubelet", InstallPath: contract.KubeletPath, TestOnly: true}}}
	runc := gocomponents.Built{Binaries: []gocomponents.Binary{{Name: "runc", InstallPath: "/usr/sbin/runc"}}}
	for _, tt := range []struct {
		name  string
		comps []gocomponents.Built
		want  bool
	}{
		{"kubelet", []gocomponents.Built{runc, kubelet}, true},
		{"none", []gocomponents.Built{runc}, false},
		{"test-only", []gocomponents.Built{testOnly}, false},
	} {
		if got := installsKubelet(tt.comps, false); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The pod sandbox image of each architecture holds the pause program built for it, under the
// name CRI is configured with, and is the same bytes on every build.
func TestPauseImage(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []contract.Arch{contract.AMD64, contract.ARM64} {
		t.Run(string(arch), func(t *testing.T) {
			bins, err := programs.Build(context.Background(), repo, t.TempDir(), arch,
				[]contract.Program{{Name: "pause", Main: pauseMain}}, "1.2.3")
			if err != nil {
				t.Fatal(err)
			}
			program, err := os.ReadFile(bins["pause"])
			if err != nil {
				t.Fatal(err)
			}
			a, err := pauseImage(program, arch.Info().GOARCH)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pauseImage(program, arch.Info().GOARCH)
			if !bytes.Equal(a, b) {
				t.Fatal("two pause images of one program differ")
			}
			files := untar(t, a)
			var idx ocispec.Index
			if err := json.Unmarshal(files["index.json"], &idx); err != nil {
				t.Fatal(err)
			}
			m := idx.Manifests[0]
			if m.Annotations["io.containerd.image.name"] != contract.PauseImageRef || m.Platform.Architecture != arch.Info().GOARCH {
				t.Fatalf("index manifest %+v", m)
			}
			var mf ocispec.Manifest
			if err := json.Unmarshal(files["blobs/sha256/"+m.Digest.Encoded()], &mf); err != nil {
				t.Fatal(err)
			}
			layer := untar(t, files["blobs/sha256/"+mf.Layers[0].Digest.Encoded()])
			f, err := elf.NewFile(bytes.NewReader(layer["pause"]))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != elf.Machine(arch.Info().ELFMachine) {
				t.Errorf("pause is for %s", f.Machine)
			}
		})
	}
}

func untar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name], _ = io.ReadAll(tr)
	}
}
