package hostctr

import (
	"bytes"
	"sync"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/logs"
)

// lineWriter turns a container's output into log lines. stdout and stderr share one, so a line
// is whole even when both streams write.
type lineWriter struct {
	mu  sync.Mutex
	src *logs.Source
	buf []byte
}

func newLineWriter(store *logs.Store, name string) *lineWriter {
	w := &lineWriter{}
	if store != nil {
		w.src, _ = store.Source(name)
	}
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	// A line longer than a record can hold is cut, not held back forever.
	for len(w.buf) >= contract.MaxLogText {
		w.line(w.buf[:contract.MaxLogText])
		w.buf = w.buf[contract.MaxLogText:]
	}
	return len(p), nil
}

// Flush logs what is left of an unfinished last line.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = nil
	}
}

func (w *lineWriter) line(b []byte) {
	if w.src != nil {
		w.src.Line(string(bytes.TrimSuffix(b, []byte("\r"))))
	}
}
