package rootfs

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// DroppedPrefixes are removed from every image: documentation and translations are not needed to run
// containers, and leaving them out keeps the root small.
var DroppedPrefixes = []string{"/usr/share/doc", "/usr/share/man", "/usr/share/info", "/usr/share/locale",
	"/usr/share/lintian", "/usr/share/bug", "/usr/share/doc-base", "/usr/share/bash-completion",
	"/usr/share/zsh", "/usr/share/fish", "/usr/share/gettext", "/usr/share/i18n"}

// Dropped reports whether p is under one of DroppedPrefixes.
func Dropped(p string) bool {
	for _, d := range DroppedPrefixes {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// CheckNoInterpreters fails when a shell or interpreter (contract.IsInterpreter, by file or link
// name) is in the tree, naming each with the package it came from.
func (t *Tree) CheckNoInterpreters() error {
	var found []string
	for p, e := range t.entries {
		if e.Kind == Dir {
			continue
		}
		if contract.IsInterpreter(path.Base(p)) {
			found = append(found, fmt.Sprintf("%s (from %s)", p, e.Origin))
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	return fmt.Errorf("rootfs: a production image must not contain shells or interpreters: %s", strings.Join(found, ", "))
}
