// Package datastore keeps the host's settings on disk: the live settings and the pending changes of
// named transactions. Every write replaces a whole file atomically (temp file, fsync, rename, fsync
// of the directory), so a reader after a crash sees each file either as it was or as it became.
//
// Layout under the root directory:
//
//	version              format version of this layout ("1")
//	live.json            the committed settings
//	pending/<tx>.json    the patch staged in transaction <tx>, merged into live on commit
//	.lock                flock(2)ed while a Store is open, so two servers never share a datastore
//
// Names starting with ".tmp-" are unfinished writes; New removes them.
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
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/ballast-os/ballast/apiserver/settings"
)

// FormatVersion is the layout version this package writes. A datastore with a newer version is
// refused rather than misread; older versions will get migrations here.
const FormatVersion = 1

// DefaultTx is the transaction the API stages into when the caller names none.
const DefaultTx = "default"

const (
	versionFile = "version"
	liveFile    = "live.json"
	pendingDir  = "pending"
	lockFile    = ".lock"
	tmpPrefix   = ".tmp-"
)

var txName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ErrClosed is returned by writes to a closed Store.
var ErrClosed = errors.New("datastore is closed")

// Store is an open datastore. Its methods are safe for concurrent use. It caches the files in
// memory: this process is the only writer, which the lock file enforces.
type Store struct {
	dir  string
	lock *os.File

	mu      sync.RWMutex
	closed  bool
	live    settings.Settings
	pending map[string]settings.Settings
}

// New opens the datastore rooted at dir, creating it if needed. created reports that there was no
// datastore before (the host's first boot). Call Close when done to release the lock.
func New(dir string) (s *Store, created bool, err error) {
	if err := os.MkdirAll(filepath.Join(dir, pendingDir), 0o700); err != nil {
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
	s = &Store{dir: dir, lock: lock, pending: map[string]settings.Settings{}}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	if err := s.removeTemps(); err != nil {
		return nil, false, err
	}
	created, err = s.checkVersion()
	if err != nil {
		return nil, false, err
	}
	if err := s.load(); err != nil {
		return nil, false, err
	}
	return s, created, nil
}

// checkVersion reads the version file, writing it when the datastore is new.
func (s *Store) checkVersion() (created bool, err error) {
	path := filepath.Join(s.dir, versionFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A live file without a version means someone removed the version by hand: starting over
		// would silently re-run first-boot user data over the host's settings.
		if _, err := os.Stat(filepath.Join(s.dir, liveFile)); err == nil {
			return false, fmt.Errorf("datastore %s: %s is missing but %s exists", s.dir, versionFile, liveFile)
		}
		if err := writeAtomic(s.dir, versionFile, []byte(strconv.Itoa(FormatVersion)+"\n")); err != nil {
			return false, err
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("datastore: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false, fmt.Errorf("datastore: %s: not a version number: %q", path, bytes.TrimSpace(b))
	}
	if v != FormatVersion {
		return false, fmt.Errorf("datastore: %s: format version %d, this build reads only %d", path, v, FormatVersion)
	}
	return false, nil
}

func (s *Store) load() error {
	live, err := readSettings(filepath.Join(s.dir, liveFile))
	if err != nil {
		return err
	}
	s.live = live
	entries, err := os.ReadDir(filepath.Join(s.dir, pendingDir))
	if err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	for _, e := range entries {
		tx, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !txName.MatchString(tx) {
			continue
		}
		p, err := readSettings(filepath.Join(s.dir, pendingDir, e.Name()))
		if err != nil {
			return err
		}
		s.pending[tx] = p
	}
	return nil
}

// readSettings decodes a settings file through the same strict decoder as the API, so a file this
// build does not understand is an error rather than silently dropped keys. A missing file is empty.
func readSettings(path string) (settings.Settings, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return settings.Settings{}, nil
	}
	if err != nil {
		return settings.Settings{}, fmt.Errorf("datastore: %w", err)
	}
	defer f.Close()
	st, err := settings.DecodeJSON(f)
	if err != nil {
		return settings.Settings{}, fmt.Errorf("datastore: %s: %w", path, err)
	}
	return st, nil
}

func (s *Store) removeTemps() error {
	for _, d := range []string{s.dir, filepath.Join(s.dir, pendingDir)} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("datastore: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				if err := os.Remove(filepath.Join(d, e.Name())); err != nil {
					return fmt.Errorf("datastore: remove unfinished write: %w", err)
				}
			}
		}
	}
	return nil
}

// Dir returns the datastore's root directory.
func (s *Store) Dir() string { return s.dir }

// Live returns the committed settings.
func (s *Store) Live() settings.Settings {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return settings.Merge(settings.Settings{}, s.live) // a copy: callers may not change the cache
}

// Pending returns the patch staged in transaction tx, and whether there is one.
func (s *Store) Pending(tx string) (settings.Settings, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.pending[tx]
	return settings.Merge(settings.Settings{}, p), ok
}

// Stage merges patch into transaction tx's pending patch and stores it.
func (s *Store) Stage(tx string, patch settings.Settings) error {
	if err := checkTx(tx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	merged := settings.Merge(s.pending[tx], patch)
	if err := merged.Validate(); err != nil {
		return err
	}
	if err := writeSettings(filepath.Join(s.dir, pendingDir), tx+".json", merged); err != nil {
		return err
	}
	s.pending[tx] = merged
	return nil
}

// Discard drops transaction tx's pending patch.
func (s *Store) Discard(tx string) error {
	if err := checkTx(tx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := removeDurably(filepath.Join(s.dir, pendingDir), tx+".json"); err != nil {
		return err
	}
	delete(s.pending, tx)
	return nil
}

// Commit merges transaction tx's pending patch into the live settings. It returns the keys the
// transaction set (none when nothing was pending) and the new live settings.
//
// The live file is replaced before the pending file is removed. A crash in between leaves a
// pending patch that is already live; committing it again changes nothing, because merging only
// sets keys.
func (s *Store) Commit(tx string) (changed []string, live settings.Settings, err error) {
	if err := checkTx(tx); err != nil {
		return nil, settings.Settings{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, settings.Settings{}, ErrClosed
	}
	p, ok := s.pending[tx]
	if !ok {
		return nil, settings.Merge(settings.Settings{}, s.live), nil
	}
	next := settings.Merge(s.live, p)
	if err := next.Validate(); err != nil {
		return nil, settings.Settings{}, err
	}
	if err := writeSettings(s.dir, liveFile, next); err != nil {
		return nil, settings.Settings{}, err
	}
	s.live = next
	delete(s.pending, tx)
	if err := removeDurably(filepath.Join(s.dir, pendingDir), tx+".json"); err != nil {
		return nil, settings.Settings{}, err
	}
	return p.Keys(), settings.Merge(settings.Settings{}, next), nil
}

// Close releases the datastore's lock. Reads still answer from memory; writes fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

func checkTx(tx string) error {
	if !txName.MatchString(tx) {
		return fmt.Errorf("transaction name %q: want 1-64 of a-z, 0-9, '-', '_'", tx)
	}
	return nil
}

func writeSettings(dir, name string, st settings.Settings) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("datastore: encode %s: %w", name, err)
	}
	return writeAtomic(dir, name, append(b, '\n'))
}

// writeAtomic replaces dir/name with data so that after a crash the file is either the old one or
// the new one: the data is synced before the rename, and the directory after it so the rename
// itself survives.
func writeAtomic(dir, name string, data []byte) (err error) {
	path := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-")
	if err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("datastore: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("datastore: write %s: %w", path, err)
	}
	return syncDir(dir)
}

func removeDurably(dir, name string) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	return syncDir(dir)
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
