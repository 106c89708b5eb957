package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrNotFound means a source has no user data for this host. It is not an error in the user data:
// a host may boot without any.
var ErrNotFound = errors.New("no user data")

// Source is a place user data can come from. Fetch returns the raw bytes (Parse them) and a name
// for their origin to put in errors, e.g. "/dev/vdb:user-data".
type Source interface {
	Fetch(ctx context.Context) (data []byte, origin string, err error)
}

// maxRaw bounds what a source reads. Compressed user data that inflates to MaxSize is not much
// larger than MaxSize; Parse applies the exact limits.
const maxRaw = 2 * MaxSize

// File is user data in a file, for development hosts and tests; a missing file is ErrNotFound.
type File string

// Fetch reads the file.
func (f File) Fetch(context.Context) ([]byte, string, error) {
	b, err := readLimited(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, string(f), fmt.Errorf("%s: %w", f, ErrNotFound)
	}
	return b, string(f), err
}

func readLimited(path string) ([]byte, error) { return readUpTo(path, maxRaw) }

// readUpTo reads a file of at most limit bytes.
func readUpTo(path string, limit int) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

// NamedSource is a source with the name the API reports it by (defaults, nocloud, imds, ...).
type NamedSource struct {
	Name   string
	Source Source
}
