package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
)

// fuzzBase is committed before every input, so that patches meet live settings that already have
// keys in the tables, maps and lists they touch: a merge that drops or clobbers a neighbour shows.
const fuzzBase = `{
	"motd": "base",
	"network": {"hostname": "base-host", "no-proxy": ["10.0.0.0/8"], "hosts": [["10.0.0.1", ["db"]]]},
	"kernel": {"sysctl": {"vm.swappiness": "10", "net.ipv4.ip_forward": "0"}, "modules": {"sctp": {"allowed": false}}},
	"host-containers": {"admin": {"source": "admin:1", "enabled": false}},
	"oci-defaults": {"capabilities": {"chown": true, "kill": false}, "resource-limits": {"max-open-files": {"hard-limit": 1024}}},
	"container-runtime": {"max-concurrent-downloads": 3}
}`

// FuzzPatch sends arbitrary PATCH /settings bodies (seeds in testdata/fuzz/FuzzPatch) to the
// handler over a real datastore holding fuzzBase, then commits. An accepted patch must read back
// from GET /tx and, once committed, from GET /settings with exactly the values sent, every other
// key as it was; a refused patch or commit must change nothing. The expectation is computed from
// the JSON alone (maps merge key by key, everything else is replaced), not with the settings
// package, so a bug there cannot hide itself.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"motd":"hi"}`))
	base := baseState(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ds := openFuzzStore(t, base)
		before := getTree(t, ds.h, "/settings")
		// want is what the live settings must be at the end, now and after a reopen.
		want := before

		rec := serve(ds.h, "PATCH", "/settings?tx=fuzz", body)
		switch rec.Code {
		case http.StatusNoContent:
			sent, err := readTree(body)
			if err != nil {
				t.Fatalf("PATCH %q was accepted, but its body is not a JSON object: %v", body, err)
			}
			if err := sameTree(mergeTree(nil, sent), getTree(t, ds.h, "/tx?tx=fuzz")); err != nil {
				t.Fatalf("PATCH %q: GET /tx: %v", body, err)
			}
			commit := serve(ds.h, "POST", "/tx/commit?tx=fuzz", nil)
			switch commit.Code {
			case http.StatusOK:
				want = mergeTree(before, sent)
			case http.StatusBadRequest:
				// A rule across keys (ValidateLive) refused the merged settings: nothing changes.
			default:
				t.Fatalf("commit of %q: status %d %s", body, commit.Code, commit.Body)
			}
			var e apitypes.Error
			if commit.Code != http.StatusOK && (json.Unmarshal(commit.Body.Bytes(), &e) != nil || e.Error == "") {
				t.Fatalf("commit of %q: error answer %q is not a JSON error", body, commit.Body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e apitypes.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error answer %q is not a JSON error", rec.Body)
			}
			if tx := getTree(t, ds.h, "/tx?tx=fuzz"); len(tx) != 0 {
				t.Fatalf("refused PATCH %q left a staged patch: %v", body, tx)
			}
		default:
			t.Fatalf("PATCH %q: status %d %s", body, rec.Code, rec.Body)
		}

		if err := sameTree(want, getTree(t, ds.h, "/settings")); err != nil {
			t.Fatalf("PATCH %q (status %d): GET /settings: %v", body, rec.Code, err)
		}
		ds.reopen(t)
		if err := sameTree(want, getTree(t, ds.h, "/settings")); err != nil {
			t.Fatalf("PATCH %q (status %d): GET /settings after reopening the datastore: %v", body, rec.Code, err)
		}
	})
}

// baseState returns the files of a datastore holding fuzzBase, made once through the API.
func baseState(tb testing.TB) map[string][]byte {
	dir := filepath.Join(tb.TempDir(), "ds")
	store, _, err := datastore.New(dir)
	if err != nil {
		tb.Fatal(err)
	}
	h := NewHandler(Config{Store: store})
	if rec := serve(h, "PATCH", "/settings?tx=base", []byte(fuzzBase)); rec.Code != http.StatusNoContent {
		tb.Fatalf("base settings: PATCH: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(h, "POST", "/tx/commit?tx=base", nil); rec.Code != http.StatusOK {
		tb.Fatalf("base settings: commit: %d %s", rec.Code, rec.Body)
	}
	// An empty base would let a merge that loses neighbours pass.
	sent, _ := readTree([]byte(fuzzBase))
	if err := sameTree(mergeTree(nil, sent), getTree(tb, h, "/settings")); err != nil {
		tb.Fatalf("base settings: %v", err)
	}
	store.Close()
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			files[e.Name()] = b
		}
	}
	return files
}

// fuzzStore is a fresh copy of the base datastore, so that no input depends on the ones before
// it and every failure reproduces from its input alone. Copying the files rather than committing
// fuzzBase again saves the durable writes, which dominate an input's cost.
type fuzzStore struct {
	dir   string
	store *datastore.Store
	h     http.Handler
}

func openFuzzStore(t *testing.T, base map[string][]byte) *fuzzStore {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ds")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range base {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ds := &fuzzStore{dir: dir}
	ds.open(t)
	t.Cleanup(func() { ds.store.Close() })
	return ds
}

func (ds *fuzzStore) open(t *testing.T) {
	t.Helper()
	store, _, err := datastore.New(ds.dir)
	if err != nil {
		t.Fatal(err)
	}
	ds.store, ds.h = store, NewHandler(Config{Store: store})
}

// reopen reads the datastore back from disk, as the next boot would: what the API answered must
// be what was stored, not only what the process holds in memory.
func (ds *fuzzStore) reopen(t *testing.T) {
	t.Helper()
	if err := ds.store.Close(); err != nil {
		t.Fatal(err)
	}
	ds.open(t)
}

func serve(h http.Handler, method, target string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, bytes.NewReader(body)))
	return rec
}

func get(t testing.TB, h http.Handler, target string) []byte {
	t.Helper()
	rec := serve(h, "GET", target, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func getTree(t testing.TB, h http.Handler, target string) map[string]any {
	t.Helper()
	tree, err := readTree(get(t, h, target))
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return tree
}

// readTree decodes a JSON object as the handler does: numbers kept exact, the last of duplicate
// keys winning.
func readTree(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if tree == nil {
		return nil, fmt.Errorf("%q is not an object", b)
	}
	return tree, nil
}

// mergeTree is what the live settings should be after patch is committed over base: objects
// (tables, and maps such as kernel.sysctl) merge key by key, lists and plain values are replaced,
// and objects left without keys disappear.
func mergeTree(base, patch map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = v
	}
	for k, pv := range patch {
		if pm, ok := pv.(map[string]any); ok {
			bm, _ := out[k].(map[string]any)
			if m := mergeTree(bm, pm); len(m) > 0 {
				out[k] = m
			} else {
				delete(out, k)
			}
			continue
		}
		out[k] = pv
	}
	return out
}

// sameTree reports the first difference between the settings tree want (built from the base and
// what was sent) and got (what the API answered), or nil.
func sameTree(want, got map[string]any) error {
	return sameValue([]string{"settings"}, want, got)
}

func sameValue(path []string, want, got any) error {
	key := strings.Join(path, ".")
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want the table %v, read back %#v", key, w, got)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range w {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: want %v, missing from the answer", key, k, w[k])
			}
			if err := sameValue(append(path, k), w[k], gv); err != nil {
				return err
			}
		}
		for k, gv := range g {
			if _, ok := w[k]; !ok {
				return fmt.Errorf("%s.%s: neither in the base nor sent, yet the answer has %v", key, k, gv)
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: want %v, read back %v", key, w, got)
		}
		for i := range w {
			if err := sameValue(append(path, fmt.Sprint(i)), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return fmt.Errorf("%s: want %s, read back %#v", key, w, got)
		}
		wi, werr := w.Int64()
		gi, gerr := g.Int64()
		if werr != nil || gerr != nil || wi != gi {
			return fmt.Errorf("%s: want %s, read back %s", key, w, g)
		}
		return nil
	case string:
		// The one spelling the model documents as an alias: a resource limit of "unlimited" is -1.
		if w == "unlimited" && len(path) == 5 && path[1] == "oci-defaults" && path[2] == "resource-limits" {
			want = json.Number("-1")
			return sameValue(path, want, got)
		}
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: want %#v, read back %#v", key, want, got)
	}
	return nil
}
