package format

import (
	"errors"

	"golang.org/x/sys/unix"
)

// nextData returns the first stretch [start, end) at or after off that the
// file system stores, so the holes of a sparse disk are never read. With no
// data left it returns (size, size). Where the file system cannot tell, the
// whole rest of the file counts as data, which is slower but still correct.
func (in *input) nextData(off int64) (start, end int64) {
	fd := int(in.f.Fd())
	start, err := unix.Seek(fd, off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return in.size, in.size
	}
	if err != nil || start < off {
		return off, in.size
	}
	end, err = unix.Seek(fd, start, unix.SEEK_HOLE)
	if err != nil || end <= start {
		return start, in.size
	}
	return min(start, in.size), min(end, in.size)
}
