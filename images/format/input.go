package format

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

const sectorSize = 512

// input is the raw disk being converted.
type input struct {
	f    *os.File
	size int64
}

// openInput opens the raw disk at path and checks it is a regular file of a
// whole, non-zero number of sectors: every output format counts in sectors.
func openInput(path string) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("raw disk: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("raw disk: %w", err)
	}
	// Convert names the file; these say what is wrong with it.
	switch {
	case st.IsDir():
		err = fmt.Errorf("raw disk is a directory")
	case !st.Mode().IsRegular():
		err = fmt.Errorf("raw disk is not a regular file (%s)", st.Mode().Type())
	case st.Size() == 0:
		err = fmt.Errorf("raw disk is empty")
	case st.Size()%sectorSize != 0:
		err = fmt.Errorf("raw disk is %d bytes, not a whole number of %d-byte sectors", st.Size(), sectorSize)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &input{f: f, size: st.Size()}, nil
}

func (in *input) Close() error { return in.f.Close() }

// sameAs reports whether path names the input file itself.
func (in *input) sameAs(path string) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ist, err := in.f.Stat()
	if err != nil {
		return false, fmt.Errorf("raw disk: %w", err)
	}
	return os.SameFile(st, ist), nil
}

// readAt reads exactly len(b) bytes at off, naming the input on failure.
func (in *input) readAt(b []byte, off int64) error {
	if _, err := in.f.ReadAt(b, off); err != nil {
		return fmt.Errorf("read raw disk at offset %d: %w", off, err)
	}
	return nil
}
