// Package bundle writes a support bundle: a gzip'd tar of named parts, each made by its own
// function, which an operator attaches to a bug report. A part whose producer is missing, says
// it is not available or fails leaves a short note file in its place and the bundle goes on;
// only the archive itself failing (the client went away) ends it. The last file, bundle.json,
// says what became of each part (apitypes.BundleIndex).
package bundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// IndexName is the bundle's last file.
const IndexName = "bundle.json"

// ErrNotAvailable marks a part that this host or build cannot produce; see NotAvailable.
var ErrNotAvailable = errors.New("not available")

type notAvailable struct{ reason string }

func (e notAvailable) Error() string { return e.reason }
func (notAvailable) Is(target error) bool {
	return target == ErrNotAvailable
}

// NotAvailable is the error a producer returns for a part it cannot make here, with the reason.
func NotAvailable(reason string) error { return notAvailable{reason} }

// Part is one named part of a bundle.
type Part struct {
	// Name is the part's file, or for a part of several files the directory they go under; the
	// notes are <Name>.unavailable and <Name>.error.
	Name string
	// Produce adds the part's files; nil means the part has no producer in this build.
	Produce func(ctx context.Context, w *Writer) error
}

// File is a part of one file, Name, whose content get returns.
func File(name string, get func(ctx context.Context) ([]byte, error)) Part {
	return Part{Name: name, Produce: func(ctx context.Context, w *Writer) error {
		b, err := get(ctx)
		if err != nil {
			return err
		}
		return w.Add(name, b)
	}}
}

// Writer adds files to the archive.
type Writer struct {
	tw    *tar.Writer
	mtime time.Time
	files []string // added by the current part
	err   error    // the archive failed: nothing more can be written
}

// Add adds a file with this content.
func (w *Writer) Add(name string, data []byte) error {
	if err := w.header(name, int64(len(data))); err != nil {
		return err
	}
	if _, err := w.tw.Write(data); err != nil {
		w.err = err
		return err
	}
	return nil
}

// AddFile adds a copy of the file at path as it is when opened; what is appended meanwhile is
// left out. A file that shrinks while it is copied is padded with zeros to keep the archive whole,
// and reported.
func (w *Writer) AddFile(name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.header(name, st.Size()); err != nil {
		return err
	}
	n, err := io.Copy(w.tw, io.LimitReader(f, st.Size()))
	if err != nil && !isReadErr(f, err) {
		w.err = err
		return err
	}
	if n < st.Size() {
		if _, perr := io.CopyN(w.tw, zeros{}, st.Size()-n); perr != nil {
			w.err = perr
			return perr
		}
		return fmt.Errorf("%s: shrank from %d to %d bytes while it was copied", path, st.Size(), n)
	}
	return nil
}

// isReadErr tells an error reading the source file from one writing the archive: io.Copy
// reports either. A read error of the file leaves the archive fine.
func isReadErr(f *os.File, err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Path == f.Name()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func (w *Writer) header(name string, size int64) error {
	if w.err != nil {
		return w.err
	}
	err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: w.mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	if err != nil {
		w.err = err
		return err
	}
	w.files = append(w.files, name)
	return nil
}

// Write writes the bundle of parts, in order, to out, and returns its index. The error is the
// archive's (out failed, or ctx ended); a part's own failure is in the index and the bundle.
func Write(ctx context.Context, out io.Writer, parts []Part, now time.Time) (apitypes.BundleIndex, error) {
	idx := apitypes.BundleIndex{Created: now.UTC().Format(time.RFC3339), Parts: []apitypes.BundlePart{}}
	gz := gzip.NewWriter(out)
	w := &Writer{tw: tar.NewWriter(gz), mtime: now}
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return idx, err
		}
		w.files = nil
		res := apitypes.BundlePart{Name: p.Name, State: apitypes.BundlePartOK}
		err := produce(ctx, p, w)
		if w.err != nil {
			return idx, fmt.Errorf("bundle: %s: %w", p.Name, w.err)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrNotAvailable):
			res.State, res.Detail = apitypes.BundlePartUnavailable, err.Error()
			w.Add(p.Name+".unavailable", []byte("not available: "+err.Error()+"\n"))
		default:
			res.State, res.Detail = apitypes.BundlePartError, err.Error()
			w.Add(p.Name+".error", []byte("error: "+err.Error()+"\n"))
		}
		if w.err != nil {
			return idx, fmt.Errorf("bundle: %s: %w", p.Name, w.err)
		}
		res.Files = append([]string{}, w.files...)
		idx.Parts = append(idx.Parts, res)
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return idx, err
	}
	if err := w.Add(IndexName, append(b, '\n')); err != nil {
		return idx, fmt.Errorf("bundle: %w", err)
	}
	if err := w.tw.Close(); err != nil {
		return idx, fmt.Errorf("bundle: %w", err)
	}
	if err := gz.Close(); err != nil {
		return idx, fmt.Errorf("bundle: %w", err)
	}
	return idx, nil
}

// produce runs one part's producer; a panic in it is that part's error, not the server's.
func produce(ctx context.Context, p Part, w *Writer) (err error) {
	if p.Produce == nil {
		return NotAvailable("this build has no producer for " + p.Name)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.Produce(ctx, w)
}
