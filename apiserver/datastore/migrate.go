package datastore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// Migration changes the state file's format from From to From+1 (Up) and back (Down). Both edit
// the state file's top-level JSON object in place (numbers as json.Number) and set its "format".
//
// Migrations must be reversible because an update can roll back: the newer build that migrated
// the datastore forward on its trial boot may never be blessed, and the older build that boots
// again cannot run code it does not have. So every write of a build at format N also writes, for
// each older format K in its chain, state.K.json: the same state migrated Down to K. An older
// build that finds state.json at a format it does not read loads its own state.K.json instead,
// with every change the newer build made; its next write replaces state.json at format K, and the
// newer build, when it boots again, migrates that Up. A Down that drops data the older format
// cannot hold moves it into the state's "preserved" object, and the Up restores it.
type Migration struct {
	From     int
	Name     string
	Up, Down func(state map[string]any) error
}

// Migrations is this build's migration chain after format 2 (format 1, a different layout, is
// read by readV1). A release that changes the state file's layout adds one here and raises
// FormatVersion; the update repository lists the migrations between releases.
func Migrations() []Migration { return nil }

// WithFormat makes the Store read and write format, with chain as its migrations. Tests use it
// to stand in for a newer build; New defaults to FormatVersion and Migrations().
func WithFormat(format int, chain []Migration) Option {
	return func(s *Store) { s.format, s.chain = format, chain }
}

// compatFile is the state migrated down to an older format, for a rollback to a build that
// reads only that format.
func compatFile(format int) string { return "state." + strconv.Itoa(format) + ".json" }

func (s *Store) migration(from int) (Migration, bool) {
	for _, m := range s.chain {
		if m.From == from {
			return m, true
		}
	}
	return Migration{}, false
}

// readTop reads a state file's top-level object and its format.
func readTop(b []byte) (map[string]any, int, error) {
	tree, err := settings.ReadJSONTree(bytes.NewReader(b))
	if err != nil {
		return nil, 0, err
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return nil, 0, errors.New("not a JSON object")
	}
	n, _ := top["format"].(json.Number)
	f, err := n.Int64()
	if err != nil || f < 2 {
		return nil, 0, fmt.Errorf("format %v is not a format version this layout has", top["format"])
	}
	return top, int(f), nil
}

// loadState reads state.json at whatever format it holds: migrated Up when older, replaced by
// this build's compat copy when newer. migrated reports that the file on disk is not at this
// build's format, so the caller rewrites it.
func (s *Store) loadState(b []byte) (snap *snapshot, migrated bool, err error) {
	path := filepath.Join(s.dir, stateFile)
	top, f, err := readTop(b)
	if err != nil {
		return nil, false, fmt.Errorf("datastore: %s: %w", path, err)
	}
	switch {
	case f > s.format:
		cpath := filepath.Join(s.dir, compatFile(s.format))
		cb, err := os.ReadFile(cpath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("datastore: %s is at format %d, written by a newer Ballast, and there is no %s for this build (format %d): a rollback across that migration is not possible", path, f, compatFile(s.format), s.format)
		}
		if err != nil {
			return nil, false, fmt.Errorf("datastore: %w", err)
		}
		if top, f, err = readTop(cb); err != nil {
			return nil, false, fmt.Errorf("datastore: %s: %w", cpath, err)
		}
		if f != s.format {
			return nil, false, fmt.Errorf("datastore: %s holds format %d", cpath, f)
		}
		path, migrated = cpath, true
	case f < s.format:
		for ; f < s.format; f++ {
			m, ok := s.migration(f)
			if !ok || m.Up == nil {
				return nil, false, fmt.Errorf("datastore: %s: no migration from format %d to %d", path, f, f+1)
			}
			if err := m.Up(top); err != nil {
				return nil, false, fmt.Errorf("datastore: %s: migration %s (format %d to %d): %w", path, m.Name, f, f+1, err)
			}
		}
		migrated = true
	}
	if err := s.toLayout(top); err != nil {
		return nil, false, fmt.Errorf("datastore: %s: %w", path, err)
	}
	snap, err = decodeTop(top, FormatVersion)
	if err != nil {
		return nil, false, fmt.Errorf("datastore: %s: %w", path, err)
	}
	return snap, migrated, nil
}

// toLayout migrates a state at the Store's format down to FormatVersion, the layout decodeTop
// reads, and fromLayout back up. They do nothing in a real build, whose format is FormatVersion;
// a Store opened WithFormat a newer format (a test standing in for a newer build) reads and
// writes its layout through its own migrations.
func (s *Store) toLayout(top map[string]any) error {
	for f := s.format; f > FormatVersion; f-- {
		m, ok := s.migration(f - 1)
		if !ok || m.Down == nil {
			return fmt.Errorf("no migration from format %d down to %d", f, f-1)
		}
		if err := m.Down(top); err != nil {
			return fmt.Errorf("migration %s down to format %d: %w", m.Name, f-1, err)
		}
	}
	return nil
}

func (s *Store) fromLayout(top map[string]any) error {
	for f := FormatVersion; f < s.format; f++ {
		m, ok := s.migration(f)
		if !ok || m.Up == nil {
			return fmt.Errorf("no migration from format %d to %d", f, f+1)
		}
		if err := m.Up(top); err != nil {
			return fmt.Errorf("migration %s to format %d: %w", m.Name, f+1, err)
		}
	}
	return nil
}

// stateTop is snap as the state file's top-level object at the Store's format.
func (s *Store) stateTop(snap *snapshot) (map[string]any, error) {
	top, err := encodeTop(snap, FormatVersion)
	if err != nil {
		return nil, err
	}
	if err := s.fromLayout(top); err != nil {
		return nil, fmt.Errorf("datastore: %w", err)
	}
	return top, nil
}

// encodeTop is snap as the state file's top-level object in the layout of format.
func encodeTop(snap *snapshot, format int) (map[string]any, error) {
	st := struct {
		Format    int                          `json:"format"`
		Live      json.RawMessage              `json:"live"`
		Pending   map[string]settings.Settings `json:"pending,omitempty"`
		Preserved map[string]any               `json:"preserved,omitempty"`
	}{format, snap.liveJSON, snap.pending, snap.preserved}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("datastore: encode state: %w", err)
	}
	tree, err := settings.ReadJSONTree(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return tree.(map[string]any), nil
}

func marshalState(top map[string]any) ([]byte, error) {
	b, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("datastore: encode state: %w", err)
	}
	return append(b, '\n'), nil
}

// compatCopies returns, for each older format in the chain, the state migrated Down to it.
func (s *Store) compatCopies(snap *snapshot) (map[int][]byte, error) {
	if _, ok := s.migration(s.format - 1); !ok {
		return nil, nil
	}
	top, err := s.stateTop(snap)
	if err != nil {
		return nil, err
	}
	out := map[int][]byte{}
	for f := s.format; ; f-- {
		m, ok := s.migration(f - 1)
		if !ok || m.Down == nil {
			return out, nil
		}
		if err := m.Down(top); err != nil {
			return nil, fmt.Errorf("datastore: migration %s down to format %d: %w", m.Name, f-1, err)
		}
		if out[f-1], err = marshalState(top); err != nil {
			return nil, err
		}
	}
}

// removeNewerCompat removes compat copies this build does not write: its own format's (left by a
// newer build, superseded once this build wrote state.json) and any above it.
func (s *Store) removeNewerCompat() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	removed := false
	for _, e := range entries {
		v, ok := strings.CutPrefix(e.Name(), "state.")
		if v, ok = strings.CutSuffix(v, ".json"); !ok {
			continue
		}
		if f, err := strconv.Atoi(v); err == nil && f >= s.format {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				return fmt.Errorf("datastore: %w", err)
			}
			removed = true
		}
	}
	if removed {
		return syncDir(s.dir)
	}
	return nil
}

// decodeLenient decodes a settings tree read from disk. A key this build does not know, or whose
// value it cannot read, comes from a newer build (written before a rollback): it is not an error
// but moved, value and all, into the returned preserved tree, which goes back to disk unchanged
// so the newer build finds it again. Settings given through the API stay strict.
func decodeLenient(tree any) (settings.Settings, map[string]any, error) {
	m, ok := tree.(map[string]any)
	if !ok {
		st, err := settings.FromTree(tree)
		return st, nil, err
	}
	m = cloneTree(m).(map[string]any)
	var preserved map[string]any
	for range 1000 {
		st, err := settings.FromTree(m)
		var ke *settings.KeyError
		if err == nil || !errors.As(err, &ke) || len(ke.Path) < 2 || ke.Path[0] != settings.Prefix {
			return st, preserved, err
		}
		v, ok := cutPath(m, ke.Path[1:])
		if !ok {
			return st, preserved, err
		}
		if preserved == nil {
			preserved = map[string]any{}
		}
		putPath(preserved, ke.Path[1:], v)
	}
	return settings.Settings{}, nil, errors.New("too many unreadable keys")
}

// cutPath removes the value at path from tree and returns it.
func cutPath(tree map[string]any, path []string) (any, bool) {
	for i, k := range path {
		v, ok := tree[k]
		if !ok {
			return nil, false
		}
		if i == len(path)-1 {
			delete(tree, k)
			return v, true
		}
		if tree, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

func putPath(tree map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := tree[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			tree[k] = next
		}
		tree = next
	}
	tree[path[len(path)-1]] = v
}

// mergeUnder copies the keys of preserved that tree lacks into tree: what this build (or the
// API since) set wins over a value kept from a newer build.
func mergeUnder(tree, preserved map[string]any) {
	for k, pv := range preserved {
		tv, ok := tree[k]
		if !ok {
			tree[k] = cloneTree(pv)
			continue
		}
		tm, ok1 := tv.(map[string]any)
		pm, ok2 := pv.(map[string]any)
		if ok1 && ok2 {
			mergeUnder(tm, pm)
		}
	}
}

func cloneTree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = cloneTree(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = cloneTree(e)
		}
		return out
	}
	return v
}

func sortedNames(m map[string]any) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
