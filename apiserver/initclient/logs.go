package initclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Files reads the service logs the system init writes, <Dir>/<service>.log.
type Files struct {
	// Dir is the log directory; "" means contract.LogDir.
	Dir string
	// Poll is how often a followed log is checked for more; 0 means 250ms.
	Poll time.Duration
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ErrNoLog means a service has no log file.
var ErrNoLog = errors.New("no log")

func (f Files) dir() string {
	if f.Dir == "" {
		return contract.LogDir
	}
	return f.Dir
}

// List returns the services that have a log, sorted.
func (f Files) List() ([]string, error) {
	entries, err := os.ReadDir(f.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	names := []string{}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".log"); ok && e.Type().IsRegular() && serviceName.MatchString(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Logs opens a service's log. With follow, reads block at the end of the file until more is
// written, ctx is done (then they return io.EOF) or the reader is closed.
func (f Files) Logs(ctx context.Context, service string, follow bool) (io.ReadCloser, error) {
	if !serviceName.MatchString(service) || strings.Contains(service, "..") {
		return nil, fmt.Errorf("logs: %q is not a service name", service)
	}
	path := filepath.Join(f.dir(), service+".log")
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("service %s: %w", service, ErrNoLog)
	}
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	if !follow {
		return file, nil
	}
	poll := f.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	return &follower{ctx: ctx, path: path, file: file, poll: poll, closed: make(chan struct{})}, nil
}

// follower reads a growing file like tail -f: at the end it waits and tries again. A file that
// shrank (rotated or truncated) is read again from its start.
type follower struct {
	ctx    context.Context
	path   string
	file   *os.File
	off    int64
	poll   time.Duration
	once   sync.Once
	closed chan struct{}
}

func (r *follower) Read(p []byte) (int, error) {
	for {
		n, err := r.file.Read(p)
		r.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		select {
		case <-r.ctx.Done():
			return 0, io.EOF
		case <-r.closed:
			return 0, io.EOF
		case <-time.After(r.poll):
		}
		if st, err := os.Stat(r.path); err == nil && st.Size() < r.off {
			if nf, err := os.Open(r.path); err == nil {
				r.file.Close()
				r.file, r.off = nf, 0
			}
		}
	}
}

func (r *follower) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}
