// Package logs keeps the host's logs for the system init: one log per source (the kernel, the
// init's console lines, each service), each line timestamped (contract.LogRecord), in rotating
// files on the data partition so they survive reboots, bounded per source and in total.
//
// Lines logged before Open (the first milestones, before the data partition is known to be
// there) wait in memory and are written at Open. A source whose persistent file cannot be written
// goes on in the volatile directory (tmpfs) for the rest of the boot; one that cannot write
// anywhere drops its lines and says how many when it can write again.
//
// Writes are appends of whole lines, and the files are fsync'd every SyncInterval and at
// rotation and Close: a power cut loses at most the last moments' lines and may cut the very
// last one short; lines written before are never changed. Opening a file whose last line was cut
// short ends that line first, so the next record starts on its own line.
package logs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// Defaults of Options.
const (
	DefaultMaxFileBytes       = 1 << 20
	DefaultRotated            = 3
	DefaultMaxTotalBytes      = 16 << 20
	DefaultVolatileTotalBytes = 4 << 20
	DefaultMemoryBytes        = 256 << 10
	DefaultSyncInterval       = time.Second
)

// Options configure a Store; zero fields take the defaults in brackets.
type Options struct {
	Dir      string // persistent log directory [contract.PersistentLogDir]
	Volatile string // where a source goes when Dir fails [contract.LogDir]
	// MaxFileBytes is the size at which a source's file is rotated [DefaultMaxFileBytes].
	MaxFileBytes int64
	// Rotated is how many rotated files a source keeps besides its current one [DefaultRotated];
	// negative keeps none.
	Rotated int
	// MaxTotalBytes bounds all files in Dir together [DefaultMaxTotalBytes]: whenever a write
	// takes them past it, files are deleted oldest first (by their last write), be they rotated
	// files or those of sources that write nothing this boot. A current file being written is
	// never deleted, so with more sources writing than MaxTotalBytes/MaxFileBytes the bound is
	// their number times MaxFileBytes.
	MaxTotalBytes int64
	// VolatileTotalBytes is MaxTotalBytes for Volatile, which is memory [DefaultVolatileTotalBytes].
	VolatileTotalBytes int64
	// MemoryBytes bounds the lines a source holds before Open [DefaultMemoryBytes]; the oldest
	// go first.
	MemoryBytes int
	// SyncInterval is how often written files are fsync'd [DefaultSyncInterval].
	SyncInterval time.Duration
	// Clock returns the wall clock and the time since boot [time.Now, CLOCK_MONOTONIC].
	Clock func() (time.Time, time.Duration)
	// Errorf reports a log that cannot be written, once per source and directory; it is never
	// called with the store's lock held, so it may log to the store [discard].
	Errorf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Dir == "" {
		o.Dir = contract.PersistentLogDir
	}
	if o.Volatile == "" {
		o.Volatile = contract.LogDir
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.Rotated < 0 {
		o.Rotated = 0
	} else if o.Rotated == 0 {
		o.Rotated = DefaultRotated
	}
	if o.MaxTotalBytes <= 0 {
		o.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if o.VolatileTotalBytes <= 0 {
		o.VolatileTotalBytes = DefaultVolatileTotalBytes
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Clock == nil {
		o.Clock = SystemClock
	}
	if o.Errorf == nil {
		o.Errorf = func(string, ...any) {}
	}
}

// SystemClock is the wall clock and CLOCK_MONOTONIC, the clock of the kernel's log timestamps.
func SystemClock() (time.Time, time.Duration) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now(), 0
	}
	return time.Now(), time.Duration(ts.Nano())
}

// Where a source writes.
const (
	inDir      = 0 // the persistent directory
	inVolatile = 1
	nowhere    = 2
)

// Store is the host's logs. Its methods are safe for concurrent use.
type Store struct {
	o    Options
	dirs [2]dirBudget

	mu        sync.Mutex
	open      bool
	dirFailed bool   // Open could not make Dir: sources start in Volatile
	marker    string // boot marker text, set by Open
	booted    time.Time
	sources   map[string]*Source
	total     [2]int64 // bytes of the log files in each directory
	// recheck is the total at which an over-budget directory is looked at again when only files
	// being written are left to delete (0: at once when over budget).
	recheck [2]int64
	stop    chan struct{} // ends the sync loop
	synced  chan struct{} // closed when it has ended
}

type dirBudget struct {
	path   string
	budget int64
}

// New returns a store that keeps lines in memory until Open.
func New(o Options) *Store {
	o.defaults()
	return &Store{
		o:       o,
		dirs:    [2]dirBudget{{o.Dir, o.MaxTotalBytes}, {o.Volatile, o.VolatileTotalBytes}},
		sources: map[string]*Source{},
	}
}

// Now is the store's clock.
func (s *Store) Now() (time.Time, time.Duration) { return s.o.Clock() }

// Source returns the log of a source, making it on first use.
func (s *Store) Source(name string) (*Source, error) {
	if err := contract.ValidLogSource(name); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.sources[name]
	if src == nil {
		src = &Source{s: s, name: name}
		if s.dirFailed {
			src.where = inVolatile
		}
		s.sources[name] = src
	}
	return src, nil
}

// Open starts writing files: every source's lines from now on, and first those that waited in
// memory. bootID and version go into the boot marker that starts each source's lines of this
// boot. The error says the persistent directory cannot be used (its lines go to the volatile
// one); the store works either way.
func (s *Store) Open(bootID, version string) error {
	var reports []string
	defer func() { s.report(reports) }()
	wall, mono := s.o.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open {
		return nil
	}
	s.open, s.dirFailed = true, false
	s.marker = contract.BootMarker(bootID, version)
	s.booted = wall.Add(-mono)
	var err error
	if err = os.MkdirAll(s.o.Dir, 0o750); err != nil {
		err = fmt.Errorf("logs: %w; this boot's lines go to %s", err, s.o.Volatile)
		s.dirFailed = true
	} else {
		s.enforce(inDir)
	}
	names := make([]string, 0, len(s.sources))
	for n := range s.sources {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		src := s.sources[n]
		if err != nil {
			src.where = inVolatile
		}
		for _, l := range src.pending {
			reports = append(reports, src.write(l)...)
		}
		src.pending, src.pendingBytes = nil, 0
	}
	s.stop, s.synced = make(chan struct{}), make(chan struct{})
	go s.syncLoop(s.stop, s.synced)
	return err
}

// Close syncs and closes the files; lines logged afterwards wait in memory (a later Open writes
// them). The system init closes the logs before it unmounts the data partition.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.open {
		s.mu.Unlock()
		return nil
	}
	s.open = false
	stop, synced := s.stop, s.synced
	var errs []error
	for _, src := range s.sources {
		if err := src.closeFile(); err != nil {
			errs = append(errs, err)
		}
		src.where = inDir
	}
	s.mu.Unlock()
	close(stop)
	<-synced
	return errors.Join(errs...)
}

// Sync fsyncs every file written since the last sync.
func (s *Store) Sync() error {
	s.mu.Lock()
	var dirty []*os.File
	for _, src := range s.sources {
		if src.out != nil && src.out.dirty {
			dirty = append(dirty, src.out.f)
			src.out.dirty = false
		}
	}
	s.mu.Unlock()
	// Outside the lock: an fsync can take a while and writers must not wait for it. A file that
	// rotation closes meanwhile was synced by the rotation.
	var errs []error
	for _, f := range dirty {
		if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("logs: sync %s: %w", f.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (s *Store) syncLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.o.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := s.Sync(); err != nil {
				s.o.Errorf("%v", err)
			}
		}
	}
}

func (s *Store) report(msgs []string) {
	for _, m := range msgs {
		s.o.Errorf("%s", m)
	}
}

// Source is one source's log.
type Source struct {
	s    *Store
	name string

	// Guarded by s.mu.
	pending      []string // formatted lines waiting for Open
	pendingBytes int
	lost         int // lines dropped since the last one written
	where        int // inDir, inVolatile or nowhere
	out          *file
	marked       [2]bool // the boot marker is in this directory's file
}

type file struct {
	f     *os.File
	size  int64
	dirty bool
}

// Line logs text as a line of this moment.
func (src *Source) Line(text string) {
	wall, mono := src.s.o.Clock()
	src.Record(contract.LogRecord{Time: wall, Mono: mono, Priority: contract.NoPriority, Text: text})
}

// Record logs a record with its own times (a kernel message, logged before it was read).
func (src *Source) Record(r contract.LogRecord) {
	line := r.Format()
	s := src.s
	s.mu.Lock()
	var reports []string
	if s.open {
		reports = src.write(line)
	} else {
		src.hold(line)
	}
	s.mu.Unlock()
	s.report(reports)
}

// hold keeps a line in memory until Open, dropping the oldest beyond MemoryBytes.
func (src *Source) hold(line string) {
	src.pending = append(src.pending, line)
	src.pendingBytes += len(line)
	for src.pendingBytes > src.s.o.MemoryBytes && len(src.pending) > 1 {
		src.pendingBytes -= len(src.pending[0])
		src.pending = src.pending[1:]
		src.lost++
	}
}

// write puts a line into the source's file, moving on to the volatile directory when the
// persistent one fails. It returns what to report once the lock is released.
func (src *Source) write(line string) (reports []string) {
	for src.where != nowhere {
		err := src.writeIn(line)
		if err == nil {
			return reports
		}
		src.closeFile()
		next := "its lines are dropped until the next boot"
		if src.where == inDir {
			next = "this boot's lines go to " + src.s.o.Volatile
		}
		reports = append(reports, fmt.Sprintf("logs: %s: %v; %s", src.name, err, next))
		src.where++
	}
	src.lost++
	return reports
}

func (src *Source) writeIn(line string) error {
	s := src.s
	d := s.dirs[src.where]
	if src.out == nil {
		f, err := src.openCurrent(d.path)
		if err != nil {
			return err
		}
		src.out = f
		s.enforce(src.where)
	}
	if !src.marked[src.where] {
		booted := contract.LogRecord{Time: s.booted, Priority: contract.NoPriority, Text: s.marker}
		if err := src.put(booted.Format()); err != nil {
			return err
		}
		src.marked[src.where] = true
	}
	if src.lost > 0 {
		wall, mono := s.o.Clock()
		note := contract.LogRecord{Time: wall, Mono: mono, Priority: contract.NoPriority, Text: lostText(src.lost)}
		if err := src.put(note.Format()); err != nil {
			return err
		}
		src.lost = 0
	}
	return src.put(line)
}

func lostText(n int) string {
	if n == 1 {
		return "-- 1 line lost --"
	}
	return "-- " + strconv.Itoa(n) + " lines lost --"
}

// put appends one line to the current file, rotating first when the line would take it past
// MaxFileBytes. One write(2) per line: a concurrent reader sees whole lines, and a power cut
// can cut only the last.
func (src *Source) put(line string) error {
	if src.out.size > 0 && src.out.size+int64(len(line)) > src.s.o.MaxFileBytes {
		if err := src.rotate(); err != nil {
			return err
		}
	}
	n, err := io.WriteString(src.out.f, line)
	src.out.size += int64(n)
	src.out.dirty = true
	s := src.s
	s.total[src.where] += int64(n)
	if t := s.total[src.where]; t > s.dirs[src.where].budget && t > s.recheck[src.where] {
		s.enforce(src.where)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", src.out.f.Name(), err)
	}
	return nil
}

// openCurrent opens (or makes) the source's current file in dir for appending. A last line cut
// short by a power cut is ended first.
func (src *Source) openCurrent(dir string) (*file, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, contract.LogFileName(src.name, 0))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := &file{f: f, size: st.Size()}
	if out.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, out.size-1); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if last[0] != '\n' {
			if _, err := f.WriteString("\n"); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			out.size++
		}
	}
	return out, nil
}

func (src *Source) closeFile() error {
	if src.out == nil {
		return nil
	}
	err := src.out.f.Sync()
	if cerr := src.out.f.Close(); err == nil {
		err = cerr
	}
	src.out = nil
	if err != nil {
		return fmt.Errorf("logs: %s: %w", src.name, err)
	}
	return nil
}

// rotate renames the current file to .1 (and .1 to .2, and so on, dropping the oldest) and
// starts a new current file. The renames go from the oldest down, so a power cut between two
// leaves a gap in the numbers, never two files with one name; readers sort what they find.
func (src *Source) rotate() error {
	s := src.s
	dir := s.dirs[src.where].path
	name := func(n int) string { return filepath.Join(dir, contract.LogFileName(src.name, n)) }
	if err := src.closeFile(); err != nil {
		return err
	}
	if s.o.Rotated == 0 {
		if err := os.Remove(name(0)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	} else {
		if err := os.Remove(name(s.o.Rotated)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for n := s.o.Rotated - 1; n >= 0; n-- {
			if err := os.Rename(name(n), name(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	syncDir(dir)
	f, err := src.openCurrent(dir)
	if err != nil {
		return err
	}
	src.out = f
	s.enforce(src.where)
	return nil
}

// age orders a source's files: the current one (0) is the newest, then .1, .2, ...
func age(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// logFile is a log file found in a directory.
type logFile struct {
	path   string
	source string
	n      int
	size   int64
	mtime  time.Time
}

// recheckSlack is how much an over-budget directory grows before it is looked at again, when
// what is over is files being written.
const recheckSlack = 64 << 10

// enforce deletes files of a directory until it is within its budget: rotated files beyond
// Rotated, then the oldest files (by their last write) but the current files being written.
// Deleting is best effort; what cannot be deleted now is tried again later.
func (s *Store) enforce(where int) {
	d := s.dirs[where]
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return
	}
	var files []logFile
	var total int64
	for _, e := range entries {
		source, n, ok := contract.ParseLogFileName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		path := filepath.Join(d.path, e.Name())
		if n > s.o.Rotated {
			if os.Remove(path) == nil {
				continue
			}
		}
		files = append(files, logFile{path: path, source: source, n: n, size: info.Size(), mtime: info.ModTime()})
		total += info.Size()
	}
	defer func() {
		s.total[where] = total
		s.recheck[where] = 0
		if total > d.budget {
			s.recheck[where] = total + recheckSlack
		}
	}()
	if total <= d.budget {
		return
	}
	active := func(f logFile) bool {
		src := s.sources[f.source]
		return src != nil && src.out != nil && src.where == where
	}
	// Oldest first; of one source's files written within a clock tick, the higher number is older.
	slices.SortFunc(files, func(a, b logFile) int {
		if c := a.mtime.Compare(b.mtime); c != 0 {
			return c
		}
		if a.source == b.source {
			return age(b.n) - age(a.n)
		}
		return 0
	})
	for _, f := range files {
		if total <= d.budget {
			return
		}
		if f.n == 0 && active(f) {
			continue
		}
		if os.Remove(f.path) == nil {
			total -= f.size
		}
	}
}
