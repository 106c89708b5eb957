// Package rootfs stages the root filesystem tree in memory and writes it as a read-only EROFS image
// with SELinux labels, without root privileges on the build host.
package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is what an entry is.
type Kind int

const (
	Dir Kind = iota
	File
	Symlink
)

// Entry is one node of the tree. Paths are absolute, cleaned ("/usr/bin/sh").
type Entry struct {
	Kind   Kind
	Mode   fs.FileMode // permission bits
	Data   []byte      // File: contents, unless Source is set
	Source string      // File: copy from this host path
	Target string      // Symlink
	Origin string      // what put it there (a package name, "ballast"), for error messages
}

// Tree is a root filesystem being assembled.
type Tree struct {
	entries map[string]*Entry
}

// New returns an empty tree holding only "/".
func New() *Tree {
	return &Tree{entries: map[string]*Entry{"/": {Kind: Dir, Mode: 0o755, Origin: "ballast"}}}
}

func clean(p string) string { return path.Clean("/" + p) }

// resolve follows symlinked directories in p's parents ("/bin/sh" → "/usr/bin/sh" when /bin → usr/bin),
// so files unpacked from packages land in the merged-/usr layout.
func (t *Tree) resolve(p string) string {
	p = clean(p)
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		e, ok := t.entries[next]
		if ok && e.Kind == Symlink && i < len(parts)-1 {
			if strings.HasPrefix(e.Target, "/") {
				next = clean(e.Target)
			} else {
				next = path.Join(cur, e.Target)
			}
		}
		cur = next
	}
	return cur
}

// Mkdir adds a directory and its parents.
func (t *Tree) Mkdir(p string, mode fs.FileMode, origin string) error {
	p = t.resolve(p)
	if p == "/" {
		return nil
	}
	if e, ok := t.entries[p]; ok {
		if e.Kind == Symlink {
			// A package's /bin is our /bin -> usr/bin: the directory it means already exists.
			target := e.Target
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(p), target)
			}
			if te, ok := t.entries[t.resolve(target)]; ok && te.Kind == Dir {
				return nil
			}
		}
		if e.Kind != Dir {
			return fmt.Errorf("rootfs: %s (from %s): exists and is not a directory (from %s)", p, origin, e.Origin)
		}
		return nil
	}
	if err := t.Mkdir(path.Dir(p), 0o755, origin); err != nil {
		return err
	}
	t.entries[p] = &Entry{Kind: Dir, Mode: mode, Origin: origin}
	return nil
}

func (t *Tree) add(p string, e *Entry) error {
	p = t.resolve(p)
	if old, ok := t.entries[p]; ok {
		if old.Kind == Dir && e.Kind == Dir {
			return nil
		}
		return fmt.Errorf("rootfs: %s from %s conflicts with the one from %s", p, e.Origin, old.Origin)
	}
	if err := t.Mkdir(path.Dir(p), 0o755, e.Origin); err != nil {
		return err
	}
	t.entries[p] = e
	return nil
}

// AddFile adds a file with the given contents.
func (t *Tree) AddFile(p string, data []byte, mode fs.FileMode, origin string) error {
	return t.add(p, &Entry{Kind: File, Data: data, Mode: mode, Origin: origin})
}

// AddHostFile adds a file copied from the build host at write time.
func (t *Tree) AddHostFile(p, source string, mode fs.FileMode, origin string) error {
	return t.add(p, &Entry{Kind: File, Source: source, Mode: mode, Origin: origin})
}

// AddSymlink adds a symbolic link.
func (t *Tree) AddSymlink(p, target, origin string) error {
	return t.add(p, &Entry{Kind: Symlink, Target: target, Mode: 0o777, Origin: origin})
}

// Remove drops p and everything below it.
func (t *Tree) Remove(p string) {
	p = t.resolve(p)
	for k := range t.entries {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(t.entries, k)
		}
	}
}

// Get returns the entry at p.
func (t *Tree) Get(p string) (*Entry, bool) {
	e, ok := t.entries[t.resolve(p)]
	return e, ok
}

// Paths returns all paths in sorted order.
func (t *Tree) Paths() []string {
	out := make([]string, 0, len(t.entries))
	for k := range t.entries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Write materializes the tree below dir (which must not exist or be empty), with exact modes.
func (t *Tree) Write(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("rootfs: clear %s: %w", dir, err)
	}
	paths := t.Paths()
	for _, p := range paths {
		e := t.entries[p]
		dst := filepath.Join(dir, filepath.FromSlash(p))
		var err error
		switch e.Kind {
		case Dir:
			err = os.MkdirAll(dst, 0o755)
		case Symlink:
			err = os.Symlink(e.Target, dst)
		case File:
			if e.Source != "" {
				err = copyFile(e.Source, dst)
			} else {
				err = os.WriteFile(dst, e.Data, 0o644)
			}
		}
		if err != nil {
			return fmt.Errorf("rootfs: write %s (from %s): %w", p, e.Origin, err)
		}
	}
	// Modes last, deepest first, so read-only directories don't block writes into them.
	for i := len(paths) - 1; i >= 0; i-- {
		e := t.entries[paths[i]]
		if e.Kind == Symlink {
			continue
		}
		if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(paths[i])), e.Mode); err != nil {
			return fmt.Errorf("rootfs: chmod %s: %w", paths[i], err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
