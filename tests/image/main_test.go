// Package image holds the image tests: they take the built disk image (build/<variant>/), check it
// from outside with the real tools, and boot copies of it in QEMU.
package image

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/contract"
)

// The tests that boot QEMU call t.Parallel first, and `make test` runs two at a time (-parallel):
// a TCG guest leaves a core idle for much of its life (waiting on its timers, its disk and the
// test's side of the exchange), and most of make test's time is guests'. Each test brings its own
// ports (freePort), network namespaces, disk copies and temporary directories, and the builder's
// caches take turns between processes, so nothing is shared but read-only build outputs.

// buildDir is the variant's build output; TestMain builds it when the Makefile did not say where it is.
var buildDir string

func TestMain(m *testing.M) {
	buildDir = os.Getenv("BALLAST_BUILD_DIR")
	if buildDir == "" {
		repo, _ := filepath.Abs("../..")
		buildDir = filepath.Join(repo, "build", "qemu")
		if _, err := os.Stat(filepath.Join(buildDir, "manifest.json")); err != nil {
			fmt.Fprintln(os.Stderr, "image tests: building variants/qemu.toml first")
			_, err := pipeline.Build(context.Background(), pipeline.Options{Repo: repo, Variant: "qemu",
				Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "ballast: "+f+"\n", a...) }})
			if err != nil {
				fmt.Fprintln(os.Stderr, "image tests: build failed:", err)
				os.Exit(1)
			}
		}
	}
	flag.Parse()
	if runsK8s() || runsK8sARM64() {
		k8sPrebuild = startK8sBuild(context.Background(), repoRoot(), k8sDir(contract.DefaultArch), contract.DefaultArch, nil)
	}
	if runsK8sARM64() {
		k8sPrebuildARM64 = startK8sBuild(context.Background(), repoRoot(), k8sDir(contract.ARM64), contract.ARM64, k8sPrebuild)
	}
	os.Exit(m.Run())
}

func loadManifest(t *testing.T) *pipeline.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(buildDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m pipeline.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return &m
}

func partition(t *testing.T, m *pipeline.Manifest, name string) (offset, size int64) {
	t.Helper()
	for _, p := range m.Partitions {
		if p.Name == name {
			return p.Offset, p.Size
		}
	}
	t.Fatalf("manifest has no partition %s", name)
	return 0, 0
}

// copyDisk makes a sparse copy of disk.raw grown to size bytes (0 keeps the size).
func copyDisk(t *testing.T, size int64) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(buildDir, "disk.raw"), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy disk: %v %s", err, out)
	}
	if size > 0 {
		if err := os.Truncate(dst, size); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// extract writes one region of a file to its own file, for tools that want a plain device image.
func extract(t *testing.T, src string, offset, size int64) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), "part.img")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	for done := int64(0); done < size; {
		n := min(int64(len(buf)), size-done)
		if _, err := in.ReadAt(buf[:n], offset+done); err != nil {
			t.Fatal(err)
		}
		if _, err := out.WriteAt(buf[:n], done); err != nil {
			t.Fatal(err)
		}
		done += n
	}
	return dst
}
