package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

// loader reads hardentest's tree (a; b-mod needs a; c) with the inserts recorded.
func loader(t *testing.T) (*Loader, *[]string) {
	t.Helper()
	l, err := New(hardentest.Root(t), hardentest.Kver)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var loaded []string
	l.Finit = func(f *os.File) error {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		loaded = append(loaded, strings.TrimPrefix(string(b), "module "))
		return nil
	}
	return l, &loaded
}

func TestResolve(t *testing.T) {
	l, _ := loader(t)
	for _, tt := range []struct {
		request string
		want    []string
	}{
		{"b-mod", []string{"b_mod"}},
		{"b_mod", []string{"b_mod"}},
		{"fs-bee", []string{"b_mod"}},
		{"char-major-10-200", []string{"c"}},
		{"char-major-11-1", nil},
		{"nope", nil},
	} {
		if got := l.Resolve(tt.request); !slices.Equal(got, tt.want) {
			t.Errorf("Resolve(%q) = %q, want %q", tt.request, got, tt.want)
		}
	}
	if p, ok := l.Path("b_mod"); !ok || filepath.Base(p) != "b-mod.ko" {
		t.Errorf("Path(b_mod) = %q, %v", p, ok)
	}
	if got := l.Closure("b-mod"); !slices.Equal(got, []string{"b_mod", "a"}) {
		t.Errorf("Closure(b-mod) = %q", got)
	}
}

func TestLoadBlocked(t *testing.T) {
	for _, tt := range []struct {
		blocked []string
		load    []string
		loaded  []string
		err     string
	}{
		{nil, []string{"b-mod", "c"}, []string{"a", "b-mod", "c"}, ""},
		{[]string{"c"}, []string{"b-mod", "c"}, []string{"a", "b-mod"}, "kmod: c: blocked by the kernel policy"},
		{[]string{"a"}, []string{"b-mod", "c"}, []string{"c"}, "kmod: b-mod: needs a, blocked by the kernel policy"},
		{[]string{"a"}, []string{"b-mod"}, nil, "kmod: b-mod: needs a, blocked by the kernel policy"},
	} {
		l, loaded := loader(t)
		p := contract.KernelPolicy{Blocked: tt.blocked}
		l.Blocked = p.Blocks
		err := l.Load(tt.load...)
		// Independent modules load in parallel: compare the set (a before b-mod is TestLoadOrder's).
		slices.Sort(*loaded)
		if !slices.Equal(*loaded, tt.loaded) || (err == nil) != (tt.err == "") || (err != nil && (!strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBlocked))) {
			t.Errorf("blocked %q, Load(%q): loaded %q, %v; want %q, %q", tt.blocked, tt.load, *loaded, err, tt.loaded, tt.err)
		}
	}
}
