package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoCopy is a repository with what the variant stage reads: VERSION, the lock and the variants.
func repoCopy(t *testing.T, version string) string {
	t.Helper()
	repo := t.TempDir()
	for _, f := range []string{"packages/debian.lock", "variants/qemu.toml"} {
		b, err := os.ReadFile(filepath.Join("../..", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(repo, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(repo, "VERSION"), []byte(version), 0o644); err != nil {
		t.Fatal(err)
	}
	return repo
}

// The variant stage: where the variant, the version and the output directory come from.
func TestLoadVariant(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	elsewhere := filepath.Join(t.TempDir(), "v2.toml")
	qemu, err := os.ReadFile("../../variants/qemu.toml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(elsewhere, []byte(strings.Replace(string(qemu), `name = "qemu"`, `name = "upd"`, 1)), 0o644)
	cases := []struct {
		name     string
		version  string // the VERSION file
		opts     Options
		wantName string
		wantVer  string
		wantOut  string // relative to the repository
		err      string
	}{
		{"named", "0.1.0\n", Options{Variant: "qemu"}, "qemu", "0.1.0", "build/qemu", ""},
		{"version given", "0.1.0\n", Options{Variant: "qemu", Version: "2.0.0"}, "qemu", "2.0.0", "build/qemu-2.0.0", ""},
		{"file", "0.1.0\n", Options{VariantFile: elsewhere, Version: "3.0.0"}, "upd", "3.0.0", "build/upd-3.0.0", ""},
		{"file at VERSION", "0.1.0\n", Options{VariantFile: elsewhere}, "upd", "0.1.0", "build/upd", ""},
		{"file and its name", "0.1.0\n", Options{VariantFile: elsewhere, Variant: "upd"}, "upd", "0.1.0", "build/upd", ""},
		{"file and another name", "0.1.0\n", Options{VariantFile: elsewhere, Variant: "qemu"}, "", "", "", `variant "qemu" and variant file ` + elsewhere + ` (name "upd") disagree`},
		{"bad version given", "0.1.0\n", Options{Variant: "qemu", Version: "2.0+1"}, "", "", "", `--version: version "2.0+1"`},
		{"bad VERSION", "0.1 beta\n", Options{Variant: "qemu"}, "", "", "", `VERSION: version "0.1 beta"`},
		{"empty VERSION", "\n", Options{Variant: "qemu"}, "", "", "", "VERSION is empty"},
		{"nothing", "0.1.0\n", Options{}, "", "", "", "no variant"},
		{"unknown variant", "0.1.0\n", Options{Variant: "nope"}, "", "", "", "nope.toml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := repoCopy(t, c.version)
			c.opts.Repo = repo
			b := &builder{Options: c.opts}
			err := b.loadVariant(context.Background())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.v.Name != c.wantName || b.version != c.wantVer || b.Out != filepath.Join(repo, c.wantOut) {
				t.Errorf("variant %s, version %s, out %s; want %s, %s, %s", b.v.Name, b.version, b.Out, c.wantName, c.wantVer, c.wantOut)
			}
			if st, err := os.Stat(b.work); err != nil || !st.IsDir() || b.work != filepath.Join(b.Out, "work") {
				t.Errorf("work directory %s: %v", b.work, err)
			}
		})
	}
}
