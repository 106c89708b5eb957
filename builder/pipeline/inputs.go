package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ballast-os/ballast/trust/sbkeys"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/ballast-os/ballast/builder/devpki"
)

// inputDirs and inputFiles are everything in the repository an image is made from, the builder's
// own code included, so a change to any of them makes the next build run.
var (
	inputDirs  = []string{"contract", "builder", "init", "apiserver", "runtime", "updates", "packages", "images", "selinux", "trust", "variants"}
	inputFiles = []string{"go.mod", "go.sum", "VERSION"}
	// Host tools whose version can change the bytes of an image.
	inputTools = [][]string{{"mkfs.erofs", "--version"}, {"mkfs.ext4", "-V"}}
)

// digestInputs digests the repository's inputs, the epoch, the tool versions and, for dev
// variants, the machine's dev PKI, and ends the build when Out already holds a build of exactly
// these inputs. The dev PKI is made here, before the digest, so the first build of a fresh clone
// digests the same PKI as every later one and a second `make image` has nothing to do.
func (b *builder) digestInputs(context.Context) error {
	if b.v.Dev {
		dir, err := devpki.ForVariant(b.CacheDir, b.v.Name)
		if err != nil {
			return err
		}
		b.pkiDir = dir
	}
	h := sha256.New()
	fmt.Fprintf(h, "epoch=%d\ngo=%s\nvariant=%s\narch=%s\nversion=%s\nformats=%v\nwithout-selinux=%v\nnetboot-url=%s\n", b.epoch, runtime.Version(), b.v.Name, b.arch, b.version, b.Formats, b.BenchWithoutSELinux, b.NetbootURL)
	// A variant file outside the repository, and the root.json it names, are inputs like the rest.
	if err := hashFile(h, "variant-file", b.v.Path); err != nil {
		return err
	}
	fmt.Fprintf(h, "updates-root %d\n", len(b.v.Updates.RootJSON))
	h.Write(b.v.Updates.RootJSON)
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
			return err
		}
	}
	for _, f := range inputFiles {
		files = append(files, filepath.Join(b.Repo, f))
	}
	if dir := b.v.KeysPath(); dir != "" {
		// The owner's keys sign the boot chain: a new key is a new image. Files that are not
		// there (PK.key and KEK.key, kept offline) are not inputs.
		for _, name := range sbkeys.BuildFiles {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("%s: secure-boot.keys: %w", b.v.Path, err)
			}
			fmt.Fprintf(h, "key %s\n", name)
			if err := hashFile(h, "keys/"+name, p); err != nil {
				return err
			}
		}
	}
	if b.pkiDir != "" {
		pk, err := filepath.Glob(filepath.Join(b.pkiDir, "*.pem"))
		if err != nil {
			return err
		}
		files = append(files, pk...)
	}
	sort.Strings(files)
	for _, f := range files {
		name := f
		if rel, err := filepath.Rel(b.Repo, f); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		} else if strings.HasPrefix(f, b.pkiDir) {
			name = "pki/" + filepath.Base(f)
		}
		if err := hashFile(h, name, f); err != nil {
			return err
		}
	}
	for _, t := range inputTools {
		out, err := exec.Command(t[0], t[1:]...).CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			// A tool that does not run at all would fail its stage later with advice; say so now.
			return fmt.Errorf("%s: %w (host-deps installs it: bash scripts/host-deps.sh)", t[0], err)
		}
		fmt.Fprintf(h, "tool %s %s\n", t[0], firstLine(string(out)))
	}
	b.inputs = hex.EncodeToString(h.Sum(nil))
	if !b.Force {
		b.upToDate = b.previousBuild()
	}
	return nil
}

func hashFile(h io.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(h, "file %s\n", name)
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// previousBuild returns the manifest in Out when Out holds a complete build of exactly these
// inputs; nil otherwise. A manifest that cannot be read or is from other inputs is not an error:
// the build simply runs.
func (b *builder) previousBuild() *Manifest {
	raw, err := os.ReadFile(filepath.Join(b.Out, "manifest.json"))
	if err != nil {
		return nil
	}
	var m Manifest
	if json.Unmarshal(raw, &m) != nil || m.Inputs != b.inputs || len(m.Outputs) == 0 {
		return nil
	}
	for name, f := range m.Outputs {
		st, err := os.Stat(filepath.Join(b.Out, name))
		if err != nil || st.Size() != f.Size {
			return nil
		}
	}
	return &m
}
