package fat

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// node is one file or directory of the volume being built.
type node struct {
	name     string // as given by the caller; the long name when longName is set
	short    shortName
	longName bool
	dir      bool
	children []*node // sorted by name, so the output does not depend on input order
	file     *File
	modTime  time.Time

	firstCluster uint32 // 0 for empty files
	clusters     uint32
}

// buildTree turns the flat file list into a directory tree, creating the
// directories that paths imply.
func buildTree(files []File, defaultTime time.Time) (*node, error) {
	root := &node{dir: true, modTime: defaultTime}
	byKey := map[*node]map[string]*node{root: {}}

	for i := range files {
		f := &files[i]
		parts, err := splitPath(f.Path)
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", f.Path, err)
		}
		if f.Dir && (f.Data != nil || f.Reader != nil) {
			return nil, fmt.Errorf("file %q: a directory cannot have content", f.Path)
		}
		mt := f.ModTime
		if mt.IsZero() {
			mt = defaultTime
		}
		dir := root
		for j, part := range parts {
			last := j == len(parts)-1
			key := strings.ToUpper(part)
			existing := byKey[dir][key]
			if existing != nil && existing.name != part {
				return nil, fmt.Errorf("file %q: %q and %q differ only in case, which FAT cannot tell apart",
					f.Path, existing.name, part)
			}
			switch {
			case !last && existing == nil:
				n := &node{name: part, dir: true, modTime: defaultTime}
				byKey[n] = map[string]*node{}
				byKey[dir][key] = n
				dir.children = append(dir.children, n)
				dir = n
			case !last && existing.dir:
				dir = existing
			case !last:
				return nil, fmt.Errorf("file %q: %q is a file, not a directory", f.Path, strings.Join(parts[:j+1], "/"))
			case existing != nil && existing.dir && f.Dir:
				existing.modTime = mt // an explicit entry may set the directory's time
			case existing != nil && existing.dir:
				return nil, fmt.Errorf("file %q: path is already a directory", f.Path)
			case existing != nil:
				return nil, fmt.Errorf("file %q: path given twice", f.Path)
			default:
				n := &node{name: part, dir: f.Dir, modTime: mt}
				if f.Dir {
					byKey[n] = map[string]*node{}
				} else {
					n.file = f
				}
				byKey[dir][key] = n
				dir.children = append(dir.children, n)
			}
		}
	}

	var finish func(d *node, path string) error
	finish = func(d *node, path string) error {
		sort.Slice(d.children, func(a, b int) bool { return d.children[a].name < d.children[b].name })
		if err := assignShortNames(d.children); err != nil {
			return fmt.Errorf("directory %q: %w", path, err)
		}
		for _, c := range d.children {
			if c.dir {
				if err := finish(c, strings.TrimPrefix(path+"/"+c.name, "/")); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := finish(root, ""); err != nil {
		return nil, err
	}
	return root, nil
}

// splitPath validates a slash-separated path relative to the volume root.
func splitPath(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("empty path")
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return nil, fmt.Errorf("path must be relative, without leading or trailing slash")
	}
	parts := strings.Split(p, "/")
	for _, part := range parts {
		if err := validName(part); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// walk visits d and its descendants in pre-order.
func walk(d *node, visit func(n, parent *node)) {
	var rec func(n, parent *node)
	rec = func(n, parent *node) {
		visit(n, parent)
		for _, c := range n.children {
			rec(c, n)
		}
	}
	rec(d, nil)
}
