package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/builder/pipeline"
	"github.com/ballast-os/ballast/trust/sbkeys"
)

// TestProductionVariantRefusesShell builds a production variant that asks for busybox: the build must
// fail naming the package the shell came from.
func TestProductionVariantRefusesShell(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	tmp := t.TempDir()
	// The repository as it is, but for its variants and outputs.
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "variants" && n != "build" && !strings.HasPrefix(n, ".") {
			if err := os.Symlink(filepath.Join(repo, n), filepath.Join(tmp, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Mkdir(filepath.Join(tmp, "variants"), 0o755)
	v, err := os.ReadFile(filepath.Join(repo, "variants", "qemu-prod.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(v), `name = "qemu-prod"`, `name = "shelly"`, 1)
	text = strings.Replace(text, `debian = ["ca-certificates"`, `debian = ["busybox-static", "ca-certificates"`, 1)
	os.WriteFile(filepath.Join(tmp, "variants", "shelly.toml"), []byte(text), 0o644)
	// A production variant is signed: it names ../build/keys.
	if err := sbkeys.Init(filepath.Join(tmp, "build", "keys"), "shelly", time.Unix(1767225600, 0)); err != nil {
		t.Fatal(err)
	}

	_, err = pipeline.Build(context.Background(), pipeline.Options{Repo: tmp, Variant: "shelly", Out: filepath.Join(tmp, "out")})
	if err == nil {
		t.Fatal("a production variant with busybox built")
	}
	for _, want := range []string{"/usr/bin/busybox (from busybox-static)", "must not contain shells", "shelly.toml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
