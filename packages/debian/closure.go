package debian

import (
	"sort"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// Closure returns the pinned packages one variant needs on arch: names and, transitively, every
// package pinned for arch whose required_by names one of them there. A lock serves all variants,
// so this keeps a production image free of what only a dev variant asked for (busybox-static).
func (l *Lock) Closure(names []string, arch contract.Arch) ([]Package, error) {
	if err := l.hasArch(arch); err != nil {
		return nil, err
	}
	deb := arch.Info().Debian
	byName := map[string]Package{}
	dependencies := map[string][]string{} // package → the pinned packages it requires on arch
	for _, p := range l.Packages {
		if !l.visible(p, arch) {
			continue
		}
		byName[p.Name] = p
		for _, by := range p.RequiredBy {
			n, a, qualified := strings.Cut(by, ":")
			if !qualified || a == deb {
				dependencies[n] = append(dependencies[n], p.Name)
			}
		}
	}
	need := map[string]bool{}
	queue := []string{}
	for _, n := range names {
		if _, ok := byName[n]; !ok {
			return nil, l.notPinned(n, arch)
		}
		if !need[n] {
			need[n] = true
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, d := range dependencies[n] {
			if !need[d] {
				need[d] = true
				queue = append(queue, d)
			}
		}
	}
	out := make([]Package, 0, len(need))
	for n := range need {
		out = append(out, byName[n])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
