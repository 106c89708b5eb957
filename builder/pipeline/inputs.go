package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// inputDirs and inputFiles are everything in the repository an image is made from, the builder's
// own code included, so a change to any of them makes the next build run.
var (
	inputDirs  = []string{"builder", "init", "apiserver", "packages", "images", "selinux", "variants"}
	inputFiles = []string{"go.mod", "go.sum", "VERSION"}
	// Host tools whose version can change the bytes of an image.
	inputTools = [][]string{{"mkfs.erofs", "--version"}, {"mkfs.ext4", "-V"}}
)

// inputsHash digests the repository's inputs, the epoch and the tool versions.
func (b *builder) inputsHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "epoch=%d\ngo=%s\nvariant=%s\nformats=%v\n", b.epoch, runtime.Version(), b.Variant, b.Formats)
	var files []string
	for _, d := range inputDirs {
		err := filepath.WalkDir(filepath.Join(b.Repo, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.Type().IsRegular() && !strings.HasSuffix(p, "_test.go") && !strings.Contains(p, "/testdata/") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("inputs: %w", err)
		}
	}
	for _, f := range inputFiles {
		files = append(files, filepath.Join(b.Repo, f))
	}
	// Dev images carry the machine's dev PKI (devPKI); a new one means a new image.
	if pk, err := filepath.Glob(filepath.Join(b.CacheDir, "pki", b.Variant, "*.pem")); err == nil {
		files = append(files, pk...)
	}
	sort.Strings(files)
	for _, f := range files {
		rel, _ := filepath.Rel(b.Repo, f)
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("inputs: %w", err)
		}
		fmt.Fprintf(h, "file %s\n", rel)
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("inputs: %s: %w", rel, err)
		}
	}
	for _, t := range inputTools {
		out, _ := exec.Command(t[0], t[1:]...).CombinedOutput()
		fmt.Fprintf(h, "tool %s %s\n", t[0], firstLine(string(out)))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// upToDate reports whether Out already holds a complete build of exactly these inputs.
func (b *builder) upToDate(inputs string) (*Manifest, bool) {
	raw, err := os.ReadFile(filepath.Join(b.Out, "manifest.json"))
	if err != nil {
		return nil, false
	}
	var m Manifest
	if json.Unmarshal(raw, &m) != nil || m.Inputs != inputs {
		return nil, false
	}
	for name, f := range m.Outputs {
		if fileSize(filepath.Join(b.Out, name)) != f.Size {
			return nil, false
		}
	}
	return &m, len(m.Outputs) > 0
}
