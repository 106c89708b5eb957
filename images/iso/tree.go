package iso

import (
	"fmt"
	"sort"
	"strings"
)

// node is a file or directory of the volume being written.
type node struct {
	name     string // Rock Ridge name: the path component as given
	id       isoID
	dir      bool
	parent   *node
	children []*node // in ISO9660 record order once sorted
	file     *File
	size     int64 // file content length
	byName   map[string]*node

	// Layout, filled in by plan.
	block   uint32 // first block of the extent (a directory's records or a file's data)
	dirRecs []*dirRecord
	dirSize int64 // directory extent bytes, a multiple of the block size
	number  int   // directory number in the path tables, from 1
}

// buildTree checks the paths and returns the root with every directory's children sorted in
// record order.
func buildTree(files []File) (*node, error) {
	root := &node{dir: true}
	root.parent = root
	for i := range files {
		f := &files[i]
		size, err := fileSize(f)
		if err != nil {
			return nil, err
		}
		parts, err := splitWritePath(f.Path)
		if err != nil {
			return nil, err
		}
		d := root
		for j, part := range parts {
			last := j == len(parts)-1
			c := d.child(part)
			switch {
			case c == nil:
				c = &node{name: part, dir: !last, parent: d}
				if d.byName == nil {
					d.byName = make(map[string]*node)
				}
				d.byName[part] = c
				d.children = append(d.children, c)
			case last && c.dir:
				return nil, fmt.Errorf("file %q: %s is also a directory", f.Path, strings.Join(parts[:j+1], "/"))
			case last:
				return nil, fmt.Errorf("file %q: given twice", f.Path)
			case !c.dir:
				return nil, fmt.Errorf("file %q: %s is also a file", f.Path, strings.Join(parts[:j+1], "/"))
			}
			if last {
				c.file, c.size = f, size
			}
			d = c
		}
	}
	if err := sortTree(root); err != nil {
		return nil, err
	}
	return root, nil
}

func (d *node) child(name string) *node { return d.byName[name] }

func sortTree(d *node) error {
	// Identifiers are assigned in name order so that which name keeps a contested identifier
	// does not depend on the order of the input.
	sort.Slice(d.children, func(i, j int) bool { return d.children[i].name < d.children[j].name })
	if err := assignIDs(d.children); err != nil {
		return fmt.Errorf("directory %q: %w", d.path(), err)
	}
	sort.SliceStable(d.children, func(i, j int) bool { return d.children[i].id.less(d.children[j].id) })
	for _, c := range d.children {
		if c.dir {
			if err := sortTree(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// path is the node's slash-separated path, "" for the root.
func (n *node) path() string {
	if n.parent == n {
		return ""
	}
	if p := n.parent.path(); p != "" {
		return p + "/" + n.name
	}
	return n.name
}

func (n *node) subdirs() int {
	k := 0
	for _, c := range n.children {
		if c.dir {
			k++
		}
	}
	return k
}

func fileSize(f *File) (int64, error) {
	size := int64(len(f.Data))
	if f.Reader != nil {
		size = f.Size
	} else if f.Size != 0 && f.Size != size {
		return 0, fmt.Errorf("file %q: Size %d but %d bytes of Data", f.Path, f.Size, len(f.Data))
	}
	if size < 0 {
		return 0, fmt.Errorf("file %q: negative size %d", f.Path, size)
	}
	if size > maxFileSize {
		return 0, fmt.Errorf("file %q: %d bytes is more than the %d one ISO9660 extent holds", f.Path, size, int64(maxFileSize))
	}
	return size, nil
}

func splitWritePath(p string) ([]string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return nil, fmt.Errorf("file %q: want a relative slash-separated path to a file", p)
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		switch {
		case c == "" || c == "." || c == "..":
			return nil, fmt.Errorf("file %q: invalid component %q", p, c)
		case len(c) > maxNameBytes:
			return nil, fmt.Errorf("file %q: component of %d bytes, more than %d", p, len(c), maxNameBytes)
		case strings.IndexByte(c, 0) >= 0:
			return nil, fmt.Errorf("file %q: NUL byte in a name", p)
		}
	}
	return parts, nil
}

// walkFiles calls fn for each file, depth first in record order: the order their data is stored.
func walkFiles(d *node, fn func(*node)) {
	for _, c := range d.children {
		if c.dir {
			walkFiles(c, fn)
		} else {
			fn(c)
		}
	}
}

// directories lists the directories breadth first, children in record order: the path table
// order (ECMA-119 9.4), which numbers each directory after its parent.
func directories(root *node) []*node {
	dirs := []*node{root}
	for i := 0; i < len(dirs); i++ {
		dirs[i].number = i + 1
		for _, c := range dirs[i].children {
			if c.dir {
				dirs = append(dirs, c)
			}
		}
	}
	return dirs
}
