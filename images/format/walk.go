package format

import (
	"bytes"
	"context"
	"fmt"
)

// blockFunc receives one block of the disk at offset off. b is nil when the
// block is all zero; otherwise it holds the block's bytes, which are only
// valid during the call. The last block is short when the disk size is not a
// multiple of the block size.
type blockFunc func(off int64, b []byte) error

// readChunk is how much is read at once: large enough that system call cost
// vanishes, small enough to keep memory flat whatever the disk size.
const readChunk = 1 << 20

// walk calls fn for every block of bs bytes of the disk, in order. Holes of
// the sparse input are reported as zero blocks without being read; blocks
// that are read are tested for zero too, since file systems store written
// zeros as data.
func walk(ctx context.Context, in *input, bs int64, fn blockFunc) error {
	chunk := max(readChunk/bs, 1) * bs
	buf := make([]byte, chunk)
	zero := make([]byte, bs)
	var off int64
	for off < in.size {
		if err := ctx.Err(); err != nil {
			return err
		}
		start, end := in.nextData(off)
		// A stretch of data starting or ending inside a block takes the whole
		// block; blocks already passed stay passed.
		if start < in.size {
			start = start / bs * bs
		}
		start = max(start, off)
		end = min((end+bs-1)/bs*bs, in.size)
		for off < start {
			if err := fn(off, nil); err != nil {
				return err
			}
			off = min(off+bs, in.size)
		}
		for off < end {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(chunk, end-off)
			if err := in.readAt(buf[:n], off); err != nil {
				return err
			}
			for i := int64(0); i < n; i += bs {
				b := buf[i:min(i+bs, n)]
				if bytes.Equal(b, zero[:len(b)]) {
					b = nil
				}
				if err := fn(off+i, b); err != nil {
					return err
				}
			}
			off += n
		}
	}
	if off != in.size {
		return fmt.Errorf("raw disk: walked to offset %d of %d", off, in.size)
	}
	return nil
}
