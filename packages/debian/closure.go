package debian

import (
	"fmt"
	"sort"
)

// Closure returns the pinned packages one variant needs: names and, transitively, every pinned
// package whose required_by names one of them. A lock serves all variants, so this keeps a
// production image free of what only a dev variant asked for (busybox-static).
func (l *Lock) Closure(names []string) ([]Package, error) {
	byName := map[string]Package{}
	dependents := map[string][]string{} // package → the pinned packages it requires
	for _, p := range l.Packages {
		byName[p.Name] = p
		for _, by := range p.RequiredBy {
			dependents[by] = append(dependents[by], p.Name)
		}
	}
	need := map[string]bool{}
	queue := []string{}
	for _, n := range names {
		if _, ok := byName[n]; !ok {
			return nil, fmt.Errorf("lock %s: package %s is not pinned (add it to the wanted packages and run make lock)", l.path, n)
		}
		if !need[n] {
			need[n] = true
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, d := range dependents[n] {
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
