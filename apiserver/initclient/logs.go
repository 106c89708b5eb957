package initclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Files reads the host logs the system init writes (see contract/logs.go): each source's files
// in the persistent directory, oldest first, then those in the volatile one, where a source
// goes on when its persistent log fails.
type Files struct {
	// Dir is the persistent log directory; "" means contract.PersistentLogDir.
	Dir string
	// Volatile is the volatile one; "" means contract.LogDir.
	Volatile string
	// Poll is how often a followed log is checked for more; 0 means 250ms.
	Poll time.Duration
}

// LogOptions say what part of a log to read.
type LogOptions struct {
	// Follow keeps reading what is appended until ctx is done or the reader is closed.
	Follow bool
	// Lines, when positive, starts that many lines before the end.
	Lines int
}

// LogFile is one file of the host logs.
type LogFile struct {
	Name string // file name; those of the volatile directory under "volatile/"
	Path string
}

// ErrNoLog means a source has no log.
var ErrNoLog = errors.New("no log")

func (f Files) dirs() []string {
	d, v := f.Dir, f.Volatile
	if d == "" {
		d = contract.PersistentLogDir
	}
	if v == "" {
		v = contract.LogDir
	}
	return []string{d, v}
}

// logFiles lists the log files of a directory; a missing directory has none.
func logFiles(dir string) ([]fileOf, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	var out []fileOf
	for _, e := range entries {
		if source, n, ok := contract.ParseLogFileName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, fileOf{source: source, n: n, name: e.Name(), path: filepath.Join(dir, e.Name())})
		}
	}
	// Per source oldest first: the highest number, ..., .1, the current file.
	slices.SortFunc(out, func(a, b fileOf) int {
		if a.source != b.source {
			if a.source < b.source {
				return -1
			}
			return 1
		}
		return age(b.n) - age(a.n)
	})
	return out, nil
}

type fileOf struct {
	source, name, path string
	n                  int
}

func age(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// List returns the sources that have a log, sorted.
func (f Files) List() ([]string, error) {
	names := []string{}
	for _, d := range f.dirs() {
		files, err := logFiles(d)
		if err != nil {
			return nil, err
		}
		for _, lf := range files {
			names = append(names, lf.source)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// LogFiles returns every file of the host logs, for a support bundle.
func (f Files) LogFiles() ([]LogFile, error) {
	var out []LogFile
	for i, d := range f.dirs() {
		files, err := logFiles(d)
		if err != nil {
			return nil, err
		}
		for _, lf := range files {
			name := lf.name
			if i == 1 {
				name = "volatile/" + name
			}
			out = append(out, LogFile{Name: name, Path: lf.path})
		}
	}
	return out, nil
}

// Logs opens a source's log, from its oldest line kept (earlier boots included) or, with
// o.Lines, that many lines before the end. With o.Follow, reads block at the end until more is
// written, ctx is done (then they return io.EOF) or the reader is closed; a rotation is followed
// to the new file.
func (f Files) Logs(ctx context.Context, source string, o LogOptions) (io.ReadCloser, error) {
	if err := contract.ValidLogSource(source); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	var paths []string
	var current string // the file being written, which a follower watches
	for _, d := range f.dirs() {
		files, err := logFiles(d)
		if err != nil {
			return nil, err
		}
		for _, lf := range files {
			if lf.source == source {
				paths = append(paths, lf.path)
				current = filepath.Join(d, contract.LogFileName(source, 0))
			}
		}
	}
	// Opened together, so a rotation while the first are read does not move the later ones.
	var opened []*os.File
	for _, p := range paths {
		file, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // rotated away since the listing
		}
		if err != nil {
			closeAll(opened)
			return nil, fmt.Errorf("logs: %w", err)
		}
		opened = append(opened, file)
	}
	// A followed log whose files were all rotated away since the listing waits for its next.
	if len(paths) == 0 || len(opened) == 0 && !o.Follow {
		return nil, fmt.Errorf("log %s: %w", source, ErrNoLog)
	}
	var off int64
	if o.Lines > 0 && len(opened) > 0 {
		i, at, err := tailStart(opened, o.Lines)
		if err != nil {
			closeAll(opened)
			return nil, fmt.Errorf("logs: %w", err)
		}
		closeAll(opened[:i])
		opened, off = opened[i:], at
		if _, err := opened[0].Seek(at, io.SeekStart); err != nil {
			closeAll(opened)
			return nil, fmt.Errorf("logs: %w", err)
		}
	}
	r := &logReader{files: opened}
	if o.Follow {
		poll := f.Poll
		if poll <= 0 {
			poll = 250 * time.Millisecond
		}
		fl := &follower{ctx: ctx, path: current, poll: poll, closed: make(chan struct{})}
		if n := len(opened); n > 0 && filepath.Base(opened[n-1].Name()) == filepath.Base(current) {
			fl.file, r.files = opened[n-1], opened[:n-1]
			if n == 1 {
				fl.off = off
			}
		}
		r.follow = fl
	}
	return r, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// tailStart finds where the last n lines of the files, read one after the other, begin: the
// index of the file and the offset in it. A line without its newline (cut short) at the end of a
// file counts, as logReader ends it.
func tailStart(files []*os.File, n int) (int, int64, error) {
	buf := make([]byte, 32<<10)
	last := true // the stream's very last byte: a newline there ends a line, it does not start one
	for i := len(files) - 1; i >= 0; i-- {
		st, err := files[i].Stat()
		if err != nil {
			return 0, 0, err
		}
		if size := st.Size(); size > 0 && i < len(files)-1 {
			if _, err := files[i].ReadAt(buf[:1], size-1); err != nil {
				return 0, 0, err
			}
			if buf[0] != '\n' {
				// The newline logReader adds after this file's cut line.
				if last {
					last = false
				} else if n--; n == 0 {
					return i + 1, 0, nil
				}
			}
		}
		for pos := st.Size(); pos > 0; {
			chunk := min(int64(len(buf)), pos)
			pos -= chunk
			if _, err := files[i].ReadAt(buf[:chunk], pos); err != nil && !errors.Is(err, io.EOF) {
				return 0, 0, err
			}
			for j := chunk - 1; j >= 0; j-- {
				nl := buf[j] == '\n'
				if last {
					last = false
					if nl {
						continue
					}
				}
				if nl {
					if n--; n == 0 {
						return i, pos + j + 1, nil
					}
				}
			}
		}
	}
	return 0, 0, nil
}

// logReader reads the files one after the other, then follows the current one if asked to. A
// file whose last line was cut short (a power cut, a failing disk) gets its newline here, so the
// next file's first line stays a line of its own.
type logReader struct {
	files  []*os.File
	follow *follower
	last   byte // the last byte read from the current file; 0 before any
}

func (r *logReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(r.files) > 0 {
		n, err := r.files[0].Read(p)
		if n > 0 {
			r.last = p[n-1]
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		r.files[0].Close()
		r.files = r.files[1:]
		if r.last != 0 && r.last != '\n' {
			r.last = 0
			p[0] = '\n'
			return 1, nil
		}
		r.last = 0
	}
	if r.follow == nil {
		return 0, io.EOF
	}
	return r.follow.Read(p)
}

func (r *logReader) Close() error {
	closeAll(r.files)
	r.files = nil
	if r.follow != nil {
		r.follow.Close()
	}
	return nil
}

// follower reads a growing file like tail -F: at the end it waits and tries again. When the
// path names another file (the log was rotated), it reads what is left of the old one and goes
// on with the new one from its start; a file that shrank is read again from its start.
type follower struct {
	ctx     context.Context
	path    string
	file    *os.File // nil until the file exists
	off     int64
	rotated bool // the path names a new file: finish this one, then switch
	poll    time.Duration
	once    sync.Once
	closed  chan struct{}
	mu      sync.Mutex // Read against Close
}

func (r *follower) Read(p []byte) (int, error) {
	for {
		select {
		case <-r.closed:
			return 0, io.EOF
		default:
		}
		r.mu.Lock()
		file := r.file
		r.mu.Unlock()
		if file != nil {
			n, err := file.Read(p)
			r.off += int64(n)
			if n > 0 {
				return n, nil
			}
			if errors.Is(err, os.ErrClosed) {
				return 0, io.EOF
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
		}
		if r.rotated || file == nil {
			// What was written to the old file before the rotation has been read.
			if nf, err := os.Open(r.path); err == nil {
				r.swap(nf)
				r.rotated = false
				continue
			}
		}
		if file != nil && !r.rotated {
			if st, err := os.Stat(r.path); err == nil {
				if cur, err := file.Stat(); err == nil && !os.SameFile(st, cur) {
					// Read the old file to its end once more before switching: lines may have
					// reached it between the read above and the rename.
					r.rotated = true
					continue
				}
				if st.Size() < r.off {
					file.Seek(0, io.SeekStart)
					r.off = 0
					continue
				}
			}
		}
		select {
		case <-r.ctx.Done():
			return 0, io.EOF
		case <-r.closed:
			return 0, io.EOF
		case <-time.After(r.poll):
		}
	}
}

func (r *follower) swap(nf *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		r.file.Close()
	}
	r.file, r.off = nf, 0
}

func (r *follower) Close() error {
	r.once.Do(func() { close(r.closed) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		r.file.Close()
	}
	return nil
}
