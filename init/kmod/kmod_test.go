package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A loader over a modules.dep of its own, whose inserts are recorded instead of made.
func testLoader(t *testing.T, dep string, fail map[string]bool) (*Loader, func() []string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "lib/modules/6.1.0-test")
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, _, _ := strings.Cut(line, ":")
		os.MkdirAll(filepath.Join(dir, filepath.Dir(mod)), 0o755)
		os.WriteFile(filepath.Join(dir, mod), []byte(mod), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644)
	l, err := New(root, "6.1.0-test")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	l.Finit = func(f *os.File) error {
		b, _ := os.ReadFile(f.Name())
		time.Sleep(5 * time.Millisecond) // long enough for an out-of-order insert to show
		mu.Lock()
		defer mu.Unlock()
		if fail[string(b)] {
			return errors.New("finit_module: exec format error")
		}
		order = append(order, string(b))
		return nil
	}
	return l, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), order...) }
}

const dep = `kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/fs/overlayfs/overlay.ko:
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko
kernel/drivers/md/dm-bufio.ko:
`

func TestLoadOrder(t *testing.T) {
	l, order := testLoader(t, dep, nil)
	if err := l.Load("br_netfilter", "overlay", "dm-verity", "bridge"); err != nil {
		t.Fatal(err)
	}
	got := order()
	pos := map[string]int{}
	for i, m := range got {
		if _, dup := pos[m]; dup {
			t.Errorf("%s inserted twice", m)
		}
		pos[m] = i
	}
	if len(got) != 7 {
		t.Fatalf("inserted %q, want all 7 modules once", got)
	}
	for _, e := range [][2]string{
		{"kernel/net/llc/llc.ko", "kernel/net/802/stp.ko"}, {"kernel/net/802/stp.ko", "kernel/net/bridge/bridge.ko"},
		{"kernel/net/bridge/bridge.ko", "kernel/net/bridge/br_netfilter.ko"}, {"kernel/drivers/md/dm-bufio.ko", "kernel/drivers/md/dm-verity.ko"},
	} {
		if pos[e[0]] > pos[e[1]] {
			t.Errorf("%s inserted before its dependency %s: %q", e[1], e[0], got)
		}
	}
	if l.Count() != 7 {
		t.Errorf("Count = %d", l.Count())
	}
	// Loaded once, never again.
	if err := l.Load("bridge"); err != nil || len(order()) != 7 {
		t.Errorf("second load: %v, %d inserts", err, len(order()))
	}
}

func TestLoadErrors(t *testing.T) {
	l, order := testLoader(t, dep, map[string]bool{"kernel/net/802/stp.ko": true})
	err := l.Load("br_netfilter", "overlay", "no_such_module_xyz")
	for _, want := range []string{
		"kernel/net/802/stp.ko: finit_module: exec format error",
		"kernel/net/bridge/bridge.ko: needs kernel/net/802/stp.ko, which did not load",
		"module no_such_module_xyz is not in",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	// What does not depend on the failure still loads.
	if got := strings.Join(order(), " "); !strings.Contains(got, "overlay.ko") || !strings.Contains(got, "llc.ko") || strings.Contains(got, "bridge.ko") {
		t.Errorf("inserted %q", got)
	}
}

// Soft dependencies (modules.softdep) load before the module where they can; one that fails
// (crc32c_intel on a CPU without SSE4.2) is no error, and the module still loads after it.
func TestSoftdeps(t *testing.T) {
	const softDep = `kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
`
	l, order := testLoader(t, softDep, map[string]bool{"kernel/arch/x86/crypto/crc32c-intel.ko": true})
	if err := os.WriteFile(filepath.Join(l.Dir, "modules.softdep"), []byte("softdep libcrc32c pre: crc32c_generic crc32c_intel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A loader of the tree as it is now, modules.softdep included, inserting as the test's does.
	finit := l.Finit
	l, err := NewDir(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Finit = finit
	if err := l.Load("erofs", "crc32c_intel"); err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := strings.Join(order(), " ")
	if want := "kernel/crypto/crc32c_generic.ko kernel/lib/libcrc32c.ko kernel/fs/erofs/erofs.ko"; got != want {
		t.Errorf("inserted %q, want %q", got, want)
	}
}
