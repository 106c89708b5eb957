// Package datastore keeps the host's settings on disk: the live settings and the pending patches
// of named transactions.
//
// Layout under the root directory (format version 2):
//
//	state.json   {"format": 2, "live": {...}, "pending": {"<tx>": {...}}}
//	.lock        flock(2)ed while a Store is open, so two servers never share a datastore
//
// The whole state is one file, replaced atomically on every change (temp file, fsync, rename,
// fsync of the directory): a commit moves a patch from pending into live in a single rename, so
// after a crash at any point the datastore holds the old state or the new one, never a mix of the
// two. Names starting with ".tmp-" are unfinished writes; New removes them.
//
// Format version 1 (a version file, live.json and pending/<tx>.json) is migrated on open.
//
// Readers never wait for a writer: the Store keeps an immutable snapshot of the state in memory
// and swaps it after each durable write. This process is the only writer, which the lock enforces.
package datastore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// FormatVersion is the layout version this package writes. A datastore with a newer version is
// refused rather than misread; older versions are migrated.
const FormatVersion = 2

// DefaultTx is the transaction the API stages into when the caller names none.
const DefaultTx = "default"

const (
	stateFile = "state.json"
	lockFile  = ".lock"
	tmpPrefix = ".tmp-"

	// Format version 1.
	v1VersionFile = "version"
	v1LiveFile    = "live.json"
	v1PendingDir  = "pending"
)

var txName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// MaxTransactions bounds the pending transactions, so the state file stays small.
const MaxTransactions = 64

// ErrClosed is returned by writes to a closed Store.
var ErrClosed = errors.New("datastore is closed")

// TxError is an error in how a caller uses transactions (a bad name, too many pending): the
// caller's to fix, unlike a failing disk.
type TxError struct{ Err error }

func (e *TxError) Error() string { return e.Err.Error() }
func (e *TxError) Unwrap() error { return e.Err }

// Store is an open datastore. Its methods are safe for concurrent use.
type Store struct {
	dir  string
	lock *os.File
	// fault, when set, is called before each step of a durable write (see writeAtomic); an error
	// stops the write there, leaving the files as a crash at that point would. Tests only.
	fault func(step string) error

	// Changes queue up while a write is in progress and go to disk together in the next one
	// (group commit): one fsync'd write per batch rather than per change.
	qmu     sync.Mutex
	queue   []*change
	writing bool // a goroutine is writing batches

	wmu    sync.Mutex // held while a batch is applied and written
	closed bool       // under wmu
	snap   atomic.Pointer[snapshot]

	format int         // the state file format this Store reads and writes
	chain  []Migration // its migrations (WithFormat)
}

// change is one queued update: fn derives the next snapshot from the current one.
type change struct {
	fn   func(*snapshot) (*snapshot, error)
	done chan error
}

// snapshot is one state of the datastore. It is never modified once published.
type snapshot struct {
	live     settings.Settings
	liveJSON []byte
	pending  map[string]settings.Settings
	// preserved holds settings a newer build wrote that this one cannot read, under "live" and
	// "pending"/<tx>; written back unchanged. Never modified once published.
	preserved map[string]any
}

// Option configures New.
type Option func(*Store)

// New opens the datastore rooted at dir, creating it if needed. created reports that there was no
// datastore before (the host's first boot). Call Close when done to release the lock.
func New(dir string, opts ...Option) (s *Store, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("datastore %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("datastore %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, fmt.Errorf("datastore %s is in use by another process", dir)
		}
		return nil, false, fmt.Errorf("datastore %s: lock: %w", dir, err)
	}
	s = &Store{dir: dir, lock: lock, format: FormatVersion, chain: Migrations()}
	for _, o := range opts {
		o(s)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	if err := s.removeTemps(); err != nil {
		return nil, false, err
	}
	created, err = s.load()
	if err != nil {
		return nil, false, err
	}
	return s, created, nil
}

// load reads the state, migrating or creating it as needed.
func (s *Store) load() (created bool, err error) {
	b, err := os.ReadFile(filepath.Join(s.dir, stateFile))
	switch {
	case err == nil:
		snap, migrated, err := s.loadState(b)
		if err != nil {
			return false, err
		}
		if migrated {
			// Written at this build's format at once: the compat copies a newer build left are
			// then superseded, and a crash from here on finds a state this build reads.
			if err := s.write(snap); err != nil {
				return false, err
			}
		} else {
			s.snap.Store(snap)
		}
		// A migration that stopped after writing the state leaves version 1 files behind.
		return false, s.removeV1()
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("datastore: %w", err)
	}
	snap, found, err := s.readV1()
	if err != nil {
		return false, err
	}
	if err := s.write(snap); err != nil {
		return false, err
	}
	if found {
		return false, s.removeV1()
	}
	return true, nil
}

// decodeTop builds a snapshot from a state file's top-level object at this layout's format,
// through the same strict decoder as the API for the top level, so a file this build does not
// understand is an error rather than silently dropped fields. Settings keys a newer build wrote
// are kept aside in the snapshot's preserved tree (decodeLenient).
func decodeTop(top map[string]any, format int) (*snapshot, error) {
	for k := range top {
		if k != "format" && k != "live" && k != "pending" && k != "preserved" {
			return nil, fmt.Errorf("unknown field %q", k)
		}
	}
	if n, _ := top["format"].(json.Number); n.String() != strconv.Itoa(format) {
		return nil, fmt.Errorf("format version %v, this build reads only %d", top["format"], format)
	}
	var kept map[string]any
	if p, ok := top["preserved"]; ok {
		if kept, ok = p.(map[string]any); !ok {
			return nil, errors.New("preserved: not a JSON object")
		}
		kept = cloneTree(kept).(map[string]any)
	}
	keptPart := func(path ...string) map[string]any {
		m := kept
		for _, k := range path {
			m, _ = m[k].(map[string]any)
		}
		return m
	}
	snap := &snapshot{pending: map[string]settings.Settings{}}
	setKept := func(v map[string]any, path ...string) {
		if len(v) == 0 {
			return
		}
		if snap.preserved == nil {
			snap.preserved = map[string]any{}
		}
		putPath(snap.preserved, path, v)
	}
	decode := func(tree any, path ...string) (settings.Settings, error) {
		if m, ok := tree.(map[string]any); ok {
			if p := keptPart(path...); p != nil {
				mergeUnder(m, p)
			}
		}
		st, rest, err := decodeLenient(tree)
		setKept(rest, path...)
		return st, err
	}
	var err error
	if snap.live, err = decode(top["live"], "live"); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	if p, ok := top["pending"]; ok {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, errors.New("pending: not a JSON object")
		}
		for _, tx := range sortedNames(m) {
			if err := checkTx(tx); err != nil {
				return nil, fmt.Errorf("pending: %w", err)
			}
			if snap.pending[tx], err = decode(m[tx], "pending", tx); err != nil {
				return nil, fmt.Errorf("pending %s: %w", tx, err)
			}
		}
	}
	if snap.liveJSON, err = json.Marshal(snap.live); err != nil {
		return nil, err
	}
	return snap, nil
}

// readV1 reads a format version 1 datastore; found is false when there is none.
func (s *Store) readV1() (snap *snapshot, found bool, err error) {
	snap = &snapshot{pending: map[string]settings.Settings{}, liveJSON: []byte("{}")}
	versionPath := filepath.Join(s.dir, v1VersionFile)
	b, err := os.ReadFile(versionPath)
	if errors.Is(err, fs.ErrNotExist) {
		// A live file without a version means someone removed the version by hand: starting over
		// would silently re-run first-boot user data over the host's settings.
		if _, err := os.Stat(filepath.Join(s.dir, v1LiveFile)); err == nil {
			return nil, false, fmt.Errorf("datastore %s: %s is missing but %s exists", s.dir, v1VersionFile, v1LiveFile)
		}
		return snap, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("datastore: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, false, fmt.Errorf("datastore: %s: not a version number: %q", versionPath, bytes.TrimSpace(b))
	}
	if v != 1 {
		return nil, false, fmt.Errorf("datastore: %s: format version %d, this build reads only %d", versionPath, v, FormatVersion)
	}
	if snap.live, err = readV1Settings(filepath.Join(s.dir, v1LiveFile)); err != nil {
		return nil, false, err
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, v1PendingDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("datastore: %w", err)
	}
	for _, e := range entries {
		tx, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !txName.MatchString(tx) {
			continue
		}
		if snap.pending[tx], err = readV1Settings(filepath.Join(s.dir, v1PendingDir, e.Name())); err != nil {
			return nil, false, err
		}
	}
	if snap.liveJSON, err = json.Marshal(snap.live); err != nil {
		return nil, false, err
	}
	return snap, true, nil
}

func readV1Settings(path string) (settings.Settings, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return settings.Settings{}, nil
	}
	if err != nil {
		return settings.Settings{}, fmt.Errorf("datastore: %w", err)
	}
	st, err := settings.DecodeJSON(bytes.NewReader(b))
	if err != nil {
		return settings.Settings{}, fmt.Errorf("datastore: %s: %w", path, err)
	}
	return st, nil
}

// removeV1 removes what version 1 left, the version file last: while it exists a reader of the
// directory can still tell what the other files were.
func (s *Store) removeV1() error {
	if err := os.RemoveAll(filepath.Join(s.dir, v1PendingDir)); err != nil {
		return fmt.Errorf("datastore: remove version 1 files: %w", err)
	}
	for _, name := range []string{v1LiveFile, v1VersionFile} {
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("datastore: remove version 1 files: %w", err)
		}
	}
	return syncDir(s.dir)
}

func (s *Store) removeTemps() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil {
				return fmt.Errorf("datastore: remove unfinished write: %w", err)
			}
		}
	}
	return nil
}

// Dir returns the datastore's root directory.
func (s *Store) Dir() string { return s.dir }

// Live returns the committed settings.
func (s *Store) Live() settings.Settings { return s.snap.Load().live.Clone() }

// LiveJSON returns the committed settings in their JSON form. The slice is shared: do not modify.
func (s *Store) LiveJSON() []byte { return s.snap.Load().liveJSON }

// Pending returns the patch staged in transaction tx, and whether there is one.
func (s *Store) Pending(tx string) (settings.Settings, bool) {
	p, ok := s.snap.Load().pending[tx]
	return p.Clone(), ok
}

// Transactions returns the names of the transactions with a pending patch, sorted.
func (s *Store) Transactions() []string {
	snap := s.snap.Load()
	names := make([]string, 0, len(snap.pending))
	for tx := range snap.pending {
		names = append(names, tx)
	}
	sort.Strings(names)
	return names
}

// Stage merges patch into transaction tx's pending patch and stores it.
func (s *Store) Stage(tx string, patch settings.Settings) error {
	if err := checkTx(tx); err != nil {
		return err
	}
	return s.update(func(old *snapshot) (*snapshot, error) {
		if _, ok := old.pending[tx]; !ok && len(old.pending) >= MaxTransactions {
			return nil, &TxError{fmt.Errorf("%d transactions are pending, the most allowed; commit or delete one", len(old.pending))}
		}
		merged := settings.Merge(old.pending[tx], patch)
		if err := merged.Validate(); err != nil {
			return nil, err
		}
		next := old.withPending(tx, merged)
		return next, nil
	})
}

// Discard drops transaction tx's pending patch.
func (s *Store) Discard(tx string) error {
	if err := checkTx(tx); err != nil {
		return err
	}
	return s.update(func(old *snapshot) (*snapshot, error) {
		if _, ok := old.pending[tx]; !ok {
			return nil, nil
		}
		return old.withPending(tx, settings.Settings{}), nil
	})
}

// Commit merges transaction tx's pending patch into the live settings in one atomic write. It
// returns the keys whose values changed (none when nothing was pending, or the patch set what was
// already live) and the new live settings. The merged result must pass ValidateLive.
func (s *Store) Commit(tx string) (changed []string, live settings.Settings, err error) {
	if err := checkTx(tx); err != nil {
		return nil, settings.Settings{}, err
	}
	err = s.update(func(old *snapshot) (*snapshot, error) {
		p, ok := old.pending[tx]
		if !ok {
			return nil, nil
		}
		next := old.withPending(tx, settings.Settings{})
		next.live = settings.Merge(old.live, p)
		if err := next.live.ValidateLive(); err != nil {
			return nil, err
		}
		var err error
		if next.liveJSON, err = json.Marshal(next.live); err != nil {
			return nil, err
		}
		changed = settings.Diff(old.live, next.live)
		return next, nil
	})
	if err != nil {
		return nil, settings.Settings{}, err
	}
	return changed, s.Live(), nil
}

// update applies fn to the current snapshot and, if it returns a new one, stores that durably
// before publishing it; fn returning nil, nil changes nothing. Concurrent updates are batched: the
// first caller writes, and the callers arriving meanwhile are written together in the next batch,
// each fn seeing the snapshot the ones before it made. A failing fn fails alone.
func (s *Store) update(fn func(*snapshot) (*snapshot, error)) error {
	c := &change{fn: fn, done: make(chan error, 1)}
	s.qmu.Lock()
	s.queue = append(s.queue, c)
	if !s.writing {
		s.writing = true
		s.qmu.Unlock()
		s.writeBatches(c)
	} else {
		s.qmu.Unlock()
	}
	return <-c.done
}

// writeBatches writes queued batches until the one holding mine is done, then hands the rest of
// the queue to a new goroutine, so that no caller waits on other callers' work for long.
func (s *Store) writeBatches(mine *change) {
	for {
		s.qmu.Lock()
		batch := s.queue
		s.queue = nil
		if len(batch) == 0 {
			s.writing = false
			s.qmu.Unlock()
			return
		}
		s.qmu.Unlock()
		s.writeBatch(batch)
		if mine != nil && slices.Contains(batch, mine) {
			s.qmu.Lock()
			more := len(s.queue) > 0
			if !more {
				s.writing = false
			}
			s.qmu.Unlock()
			if more {
				go s.writeBatches(nil)
			}
			return
		}
	}
}

func (s *Store) writeBatch(batch []*change) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	errs := make([]error, len(batch))
	cur, changed := s.snap.Load(), false
	for i, c := range batch {
		if s.closed {
			errs[i] = ErrClosed
			continue
		}
		next, err := c.fn(cur)
		if err != nil {
			errs[i] = err
			continue
		}
		if next != nil {
			cur, changed = next, true
		}
	}
	if changed {
		if err := s.write(cur); err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
	}
	for i, c := range batch {
		c.done <- errs[i]
	}
}

// withPending returns a copy of snap with tx's pending patch replaced (removed when empty).
func (snap *snapshot) withPending(tx string, p settings.Settings) *snapshot {
	next := &snapshot{live: snap.live, liveJSON: snap.liveJSON, preserved: snap.preserved, pending: make(map[string]settings.Settings, len(snap.pending)+1)}
	for k, v := range snap.pending {
		next.pending[k] = v
	}
	if p.IsEmpty() {
		delete(next.pending, tx)
		next.preserved = withoutPendingKept(snap.preserved, tx)
	} else {
		next.pending[tx] = p
	}
	return next
}

// write stores snap durably and then publishes it to readers: first the compat copies for the
// older formats of the migration chain, then state.json, so the newest state is on disk for every
// format before it is published.
func (s *Store) write(snap *snapshot) error {
	copies, err := s.compatCopies(snap)
	if err != nil {
		return err
	}
	for _, f := range sortedFormats(copies) {
		if err := s.writeAtomic(compatFile(f), copies[f]); err != nil {
			return err
		}
	}
	top, err := s.stateTop(snap)
	if err != nil {
		return err
	}
	b, err := marshalState(top)
	if err != nil {
		return err
	}
	if err := s.writeAtomic(stateFile, b); err != nil {
		return err
	}
	if err := s.removeNewerCompat(); err != nil {
		return err
	}
	s.snap.Store(snap)
	return nil
}

func sortedFormats(m map[int][]byte) []int {
	out := make([]int, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	sort.Ints(out)
	return out
}

// withoutPendingKept is preserved without what was kept for transaction tx.
func withoutPendingKept(preserved map[string]any, tx string) map[string]any {
	p, _ := preserved["pending"].(map[string]any)
	if _, ok := p[tx]; !ok {
		return preserved
	}
	out := cloneTree(preserved).(map[string]any)
	delete(out["pending"].(map[string]any), tx)
	if len(out["pending"].(map[string]any)) == 0 {
		delete(out, "pending")
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Close releases the datastore's lock. Reads still answer from memory; writes fail.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

func checkTx(tx string) error {
	if !txName.MatchString(tx) {
		return &TxError{fmt.Errorf("transaction name %q: want 1-64 of a-z, 0-9, '-', '_', starting with a letter or digit", tx)}
	}
	return nil
}

// The steps of writeAtomic, as the fault hook names them. Each is called before the step runs.
const (
	stepCreate  = "create"   // before the temp file is created
	stepWrite   = "write"    // after half the data is written
	stepSync    = "sync"     // all data written, before fsync
	stepRename  = "rename"   // data synced and closed, before the rename
	stepDirSync = "dir-sync" // renamed, before the directory is synced
)

// writeAtomic replaces dir/name with data so that after a crash the file is either the old one or
// the new one: the data is synced before the rename, and the directory after it so the rename
// itself survives.
func (s *Store) writeAtomic(name string, data []byte) (err error) {
	path := filepath.Join(s.dir, name)
	fault := func(step string) error {
		if s.fault == nil {
			return nil
		}
		if err := s.fault(step); err != nil {
			return fmt.Errorf("datastore: write %s: %s: %w", path, step, err)
		}
		return nil
	}
	if err := fault(stepCreate); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+name+"-")
	if err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	crashed := false
	defer func() {
		// A failure cleans up; an injected crash leaves the files as they are.
		if err != nil && !crashed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	if err := fault(stepWrite); err != nil {
		crashed = true
		f.Close()
		return err
	}
	if _, err := f.Write(data[half:]); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	if err := fault(stepSync); err != nil {
		crashed = true
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("datastore: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	if err := fault(stepRename); err != nil {
		crashed = true
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	if err := fault(stepDirSync); err != nil {
		crashed = true
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("datastore: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("datastore: sync %s: %w", dir, err)
	}
	return nil
}
