package logs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// fakeClock starts at a fixed moment, 5 s after boot, and moves a millisecond per reading.
type fakeClock struct {
	mu sync.Mutex
	n  time.Duration
}

var bootTime = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func (c *fakeClock) now() (time.Time, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += time.Millisecond
	mono := 5*time.Second + c.n
	return bootTime.Add(mono), mono
}

func testStore(t *testing.T, o Options) (*Store, *[]string) {
	t.Helper()
	if o.Dir == "" {
		o.Dir = filepath.Join(t.TempDir(), "persistent")
	}
	if o.Volatile == "" {
		o.Volatile = filepath.Join(t.TempDir(), "volatile")
	}
	if o.Clock == nil {
		o.Clock = (&fakeClock{}).now
	}
	var mu sync.Mutex
	var errs []string
	o.Errorf = func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(f, a...))
	}
	s := New(o)
	t.Cleanup(func() { s.Close() })
	return s, &errs
}

func source(t *testing.T, s *Store, name string) *Source {
	t.Helper()
	src, err := s.Source(name)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// files returns a source's files in dir, oldest first, as readers order them.
func files(t *testing.T, dir, source string) []string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	type f struct {
		path string
		n    int
	}
	var fs []f
	for _, e := range entries {
		if s, n, ok := contract.ParseLogFileName(e.Name()); ok && s == source {
			fs = append(fs, f{filepath.Join(dir, e.Name()), n})
		}
	}
	// The highest number is the oldest; the current file (0) is the newest.
	age := func(n int) int {
		if n == 0 {
			return -1
		}
		return n
	}
	slices.SortFunc(fs, func(a, b f) int { return age(b.n) - age(a.n) })
	var out []string
	for _, x := range fs {
		out = append(out, x.path)
	}
	return out
}

// texts reads a source's log in dir: every line's text, oldest first; a line that does not parse
// fails the test unless allowBad says it may be there.
func texts(t *testing.T, dir, source string, allowBad func(string) bool) []string {
	t.Helper()
	var out []string
	for _, p := range files(t, dir, source) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", p)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			r, err := contract.ParseLogRecord(l)
			if err != nil {
				if allowBad == nil || !allowBad(l) {
					t.Errorf("%s: %v: %q", p, err, l)
				}
				out = append(out, "!"+l)
				continue
			}
			out = append(out, r.Text)
		}
	}
	return out
}

const marker = "-- boot 11111111-2222-3333-4444-555555555555 version 1.2.3 --"

func TestLinesBeforeOpenAndBootMarker(t *testing.T) {
	s, errs := testStore(t, Options{MemoryBytes: 300})
	k := source(t, s, "kernel")
	k.Line("early 1")
	for i := 2; i <= 6; i++ {
		k.Line("early " + strconv.Itoa(i)) // ~55 bytes each: the first ones do not fit in 300
	}
	if fs := files(t, s.o.Dir, "kernel"); len(fs) != 0 {
		t.Fatalf("files before Open: %q", fs)
	}
	if err := s.Open("11111111-2222-3333-4444-555555555555", "1.2.3"); err != nil {
		t.Fatal(err)
	}
	k.Line("after open")
	got := texts(t, s.o.Dir, "kernel", nil)
	want := []string{marker, "-- 1 line lost --", "early 2", "early 3", "early 4", "early 5", "early 6", "after open"}
	if !slices.Equal(got, want) {
		t.Errorf("log:\n got %q\nwant %q", got, want)
	}
	// The marker carries the boot's start: the wall time at uptime 0.
	b, _ := os.ReadFile(filepath.Join(s.o.Dir, "kernel.log"))
	first, _ := contract.ParseLogRecord(strings.SplitN(string(b), "\n", 2)[0])
	if !first.Time.Equal(bootTime) || first.Mono != 0 {
		t.Errorf("marker record %+v, want time %v at uptime 0", first, bootTime)
	}
	if len(*errs) != 0 {
		t.Errorf("errors: %q", *errs)
	}

	// The next boot appends its own marker; a second Open of the same boot does nothing.
	s.Close()
	s2, _ := testStore(t, Options{Dir: s.o.Dir})
	if err := s2.Open("99999999-2222-3333-4444-555555555555", "1.2.4"); err != nil {
		t.Fatal(err)
	}
	s2.Open("x", "y")
	source(t, s2, "kernel").Line("boot 2")
	got = texts(t, s.o.Dir, "kernel", nil)
	if !slices.Equal(got[len(got)-2:], []string{"-- boot 99999999-2222-3333-4444-555555555555 version 1.2.4 --", "boot 2"}) || len(got) != len(want)+2 {
		t.Errorf("after a second boot:\n%q", got)
	}
}

// TestRotationBounds writes many lines of random lengths from several sources and checks after
// every write that each source keeps at most Rotated+1 files of at most MaxFileBytes, that the
// directory stays within MaxTotalBytes, and that what is kept is the newest lines, in order,
// without a gap.
func TestRotationBounds(t *testing.T) {
	const (
		maxFile  = 2048
		rotated  = 2
		maxTotal = 10 * 1024 // 3 sources × 3 files × 2 KiB would be 18 KiB: the total must bite
	)
	s, errs := testStore(t, Options{MaxFileBytes: maxFile, Rotated: rotated, MaxTotalBytes: maxTotal})
	// Files of a source from an earlier boot that writes nothing now: deleted before the others.
	old := filepath.Join(s.o.Dir, "retired.log")
	os.MkdirAll(s.o.Dir, 0o755)
	os.WriteFile(old, []byte(strings.Repeat("x", 1000)+"\n"), 0o640)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	// And a rotated file beyond Rotated, from a configuration that kept more.
	os.WriteFile(filepath.Join(s.o.Dir, "kernel.log.7"), []byte("old\n"), 0o640)
	if err := s.Open("b", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.o.Dir, "kernel.log.7")); err == nil {
		t.Error("a rotated file beyond Rotated survived Open")
	}
	names := []string{"kernel", "apiserver", "init"}
	srcs := map[string]*Source{}
	for _, n := range names {
		srcs[n] = source(t, s, n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	next := map[string]int{}
	check := func(step int) {
		t.Helper()
		entries, err := os.ReadDir(s.o.Dir)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		perSource := map[string]int{}
		for _, e := range entries {
			info, _ := e.Info()
			total += info.Size()
			src, _, ok := contract.ParseLogFileName(e.Name())
			if !ok {
				t.Fatalf("step %d: stray file %s", step, e.Name())
			}
			perSource[src]++
			if info.Size() > maxFile {
				t.Fatalf("step %d: %s is %d bytes, more than %d", step, e.Name(), info.Size(), maxFile)
			}
		}
		if total > maxTotal {
			t.Fatalf("step %d: %d bytes in the directory, more than %d", step, total, maxTotal)
		}
		for src, n := range perSource {
			if n > rotated+1 {
				t.Fatalf("step %d: %s has %d files", step, src, n)
			}
		}
	}
	for step := range 3000 {
		n := names[rng.IntN(len(names))]
		next[n]++
		srcs[n].Line(fmt.Sprintf("%s %d %s", n, next[n], strings.Repeat("y", rng.IntN(120))))
		if step%7 == 0 || step > 2990 {
			check(step)
		}
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("the retired source's log was kept while the directory was over its budget")
	}
	for _, n := range names {
		got := texts(t, s.o.Dir, n, nil)
		if len(got) == 0 {
			t.Fatalf("%s: nothing kept", n)
		}
		// Kept lines are consecutive and end with the last one written.
		var nums []int
		for _, l := range got {
			if strings.HasPrefix(l, "--") {
				continue
			}
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[1])
			nums = append(nums, v)
		}
		for i := 1; i < len(nums); i++ {
			if nums[i] != nums[i-1]+1 {
				t.Fatalf("%s: line %d follows %d: a gap in what was kept", n, nums[i], nums[i-1])
			}
		}
		if nums[len(nums)-1] != next[n] {
			t.Errorf("%s: last kept line %d, last written %d", n, nums[len(nums)-1], next[n])
		}
	}
	// Deleting goes no further than the budget asks.
	var total int64
	for _, n := range names {
		for _, p := range files(t, s.o.Dir, n) {
			info, _ := os.Stat(p)
			total += info.Size()
		}
	}
	if total < maxTotal/2 {
		t.Errorf("%d bytes kept of a budget of %d", total, maxTotal)
	}
	if len(*errs) != 0 {
		t.Errorf("errors: %q", *errs)
	}
}

// A power cut may leave the last line cut short (or, on a filesystem that extended the file
// before its data reached the disk, ending in zeros). The next boot's store must end that line
// and append after it, and leave every earlier line as it was.
func TestCutShortLastLine(t *testing.T) {
	for _, tail := range []string{"", "\x00\x00\x00"} {
		dir := filepath.Join(t.TempDir(), "persistent")
		s, _ := testStore(t, Options{Dir: dir})
		s.Open("boot-1", "v")
		api := source(t, s, "apiserver")
		for i := range 10 {
			api.Line(fmt.Sprintf("line %d of the first boot", i))
		}
		// No Close: the power goes. The last line reached the disk only in part.
		path := filepath.Join(dir, "apiserver.log")
		before, _ := os.ReadFile(path)
		cut := len(before) - 12
		if err := os.Truncate(path, int64(cut)); err != nil {
			t.Fatal(err)
		}
		if tail != "" {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(tail)
			f.Close()
		}
		s.Close()

		s2, errs := testStore(t, Options{Dir: dir})
		s2.Open("boot-2", "v")
		source(t, s2, "apiserver").Line("first line of the second boot")
		after, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(after), string(before[:cut])+tail+"\n") {
			t.Fatalf("earlier lines changed:\n%q\nwant prefix\n%q", after, string(before[:cut])+tail+"\n")
		}
		got := texts(t, dir, "apiserver", nil)
		want := []string{"-- boot boot-1 version v --"}
		for i := range 9 {
			want = append(want, fmt.Sprintf("line %d of the first boot", i))
		}
		// 12 bytes are " first boot\n".
		want = append(want, "line 9 of the"+tail, "-- boot boot-2 version v --", "first line of the second boot")
		if !slices.Equal(got, want) {
			t.Errorf("tail %q: log after the cut:\n got %q\nwant %q", tail, got, want)
		}
		if len(*errs) != 0 {
			t.Errorf("errors: %q", *errs)
		}
	}
}

func TestFallbackToVolatile(t *testing.T) {
	// A persistent directory that cannot be made: everything goes to the volatile one.
	blocked := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocked, nil, 0o644)
	s, errs := testStore(t, Options{Dir: filepath.Join(blocked, "logs")})
	source(t, s, "kernel").Line("before")
	if err := s.Open("b", "v"); err == nil || !strings.Contains(err.Error(), s.o.Volatile) {
		t.Errorf("Open = %v, want an error naming the volatile directory", err)
	}
	source(t, s, "apiserver").Line("made after Open")
	if got := texts(t, s.o.Volatile, "kernel", nil); !slices.Equal(got, []string{"-- boot b version v --", "before"}) {
		t.Errorf("kernel in the volatile directory: %q", got)
	}
	if got := texts(t, s.o.Volatile, "apiserver", nil); !slices.Equal(got, []string{"-- boot b version v --", "made after Open"}) {
		t.Errorf("apiserver in the volatile directory: %q", got)
	}
	if len(*errs) != 0 {
		t.Errorf("errors reported per source besides Open's: %q", *errs)
	}

	// The persistent file fails in the middle of a boot: the source goes on in the volatile
	// directory, with its own boot marker, and says so once.
	s2, errs2 := testStore(t, Options{})
	s2.Open("b", "v")
	k := source(t, s2, "kernel")
	k.Line("one")
	s2.mu.Lock()
	k.out.f.Close() // the disk is gone
	s2.mu.Unlock()
	k.Line("two")
	k.Line("three")
	if got := texts(t, s2.o.Dir, "kernel", nil); !slices.Equal(got, []string{"-- boot b version v --", "one"}) {
		t.Errorf("persistent: %q", got)
	}
	if got := texts(t, s2.o.Volatile, "kernel", nil); !slices.Equal(got, []string{"-- boot b version v --", "two", "three"}) {
		t.Errorf("volatile: %q", got)
	}
	if len(*errs2) != 1 || !strings.Contains((*errs2)[0], "logs: kernel: ") || !strings.Contains((*errs2)[0], s2.o.Volatile) {
		t.Errorf("reports: %q", *errs2)
	}
}

func TestSourceNames(t *testing.T) {
	s, _ := testStore(t, Options{})
	for _, bad := range []string{"", "../x", "a/b"} {
		if _, err := s.Source(bad); err == nil {
			t.Errorf("Source(%q) accepted", bad)
		}
	}
	a, _ := s.Source("apiserver")
	b, _ := s.Source("apiserver")
	if a != b {
		t.Error("two Sources for one name")
	}
}

func TestSyncAndConcurrentWriters(t *testing.T) {
	s, errs := testStore(t, Options{SyncInterval: time.Millisecond, MaxFileBytes: 4096})
	s.Open("b", "v")
	var wg sync.WaitGroup
	for w := range 4 {
		src := source(t, s, "svc"+strconv.Itoa(w%2))
		wg.Go(func() {
			for i := range 500 {
				src.Line(fmt.Sprintf("writer %d line %d", w, i))
			}
		})
	}
	wg.Wait()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"svc0", "svc1"} {
		for _, l := range texts(t, s.o.Dir, n, nil) {
			if !strings.HasPrefix(l, "writer ") && !strings.HasPrefix(l, "-- boot") {
				t.Errorf("%s: mangled line %q", n, l)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close, lines wait in memory: nothing is written to a directory about to be unmounted.
	fs := files(t, s.o.Dir, "svc0")
	info, _ := os.Stat(fs[len(fs)-1])
	source(t, s, "svc0").Line("after close")
	if info2, _ := os.Stat(fs[len(fs)-1]); info2.Size() != info.Size() {
		t.Error("a line was written after Close")
	}
	if len(*errs) != 0 {
		t.Errorf("errors: %q", *errs)
	}
}
