package sbom

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// graph collects packages under internal keys ("deb:busybox-static", "gomod:path@version") and the
// relationships between those keys. SPDXIDs are assigned only at the end, once every name is known,
// so that a collision between two sanitized names can be settled without depending on input order.
type graph struct {
	nodes map[string]*node
	edges map[edge]bool
}

type node struct {
	kind string // SPDXID prefix, e.g. "GoModule"
	name string // what the SPDXID is made from
	pkg  Package
}

type edge struct{ from, typ, to string }

func newGraph() *graph {
	return &graph{nodes: map[string]*node{}, edges: map[edge]bool{}}
}

// add registers a package; a key seen before is an error, because it means the input lists the same
// thing twice.
func (g *graph) add(key, kind, name string, p Package) error {
	if _, dup := g.nodes[key]; dup {
		return errors.New("listed twice")
	}
	g.nodes[key] = &node{kind: kind, name: name, pkg: p}
	return nil
}

func (g *graph) has(key string) bool {
	_, ok := g.nodes[key]
	return ok
}

func (g *graph) relate(from, typ, to string) {
	g.edges[edge{from, typ, to}] = true
}

// finish assigns SPDXIDs and returns the packages and relationships in a stable order. The key
// documentID stands for the document itself.
func (g *graph) finish() ([]Package, []Relationship, map[string]string, error) {
	ids := map[string]string{documentID: documentID}
	byBase := map[string][]string{}
	for key, n := range g.nodes {
		base := "SPDXRef-" + n.kind + "-" + idPart(n.name)
		byBase[base] = append(byBase[base], key)
	}
	seen := map[string]string{documentID: documentID}
	for base, keys := range byBase {
		for _, key := range keys {
			id := base
			if len(keys) > 1 {
				id += "-" + keyHash(key)
			}
			if other, dup := seen[id]; dup {
				return nil, nil, nil, fmt.Errorf("SPDXID %s would name both %s and %s", id, other, key)
			}
			seen[id] = key
			ids[key] = id
		}
	}

	pkgs := make([]Package, 0, len(g.nodes))
	for key, n := range g.nodes {
		p := n.pkg
		p.SPDXID = ids[key]
		pkgs = append(pkgs, p)
	}
	slices.SortFunc(pkgs, func(a, b Package) int { return cmp.Compare(a.SPDXID, b.SPDXID) })

	rels := make([]Relationship, 0, len(g.edges))
	for e := range g.edges {
		from, ok1 := ids[e.from]
		to, ok2 := ids[e.to]
		if !ok1 || !ok2 {
			return nil, nil, nil, fmt.Errorf("relationship %s %s %s names a package that is not in the document", e.from, e.typ, e.to)
		}
		rels = append(rels, Relationship{Element: from, Type: e.typ, Related: to})
	}
	slices.SortFunc(rels, func(a, b Relationship) int {
		return cmp.Or(cmp.Compare(a.Element, b.Element), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Related, b.Related))
	})
	return pkgs, rels, ids, nil
}
