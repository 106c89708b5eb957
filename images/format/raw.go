package format

import (
	"context"
	"fmt"
)

// sparseBlock is the granularity at which raw and VHD outputs skip zeros:
// the page and file system block size, so the copy is as sparse as the
// file system can make it.
const sparseBlock = 4096

// writeRaw copies the disk, leaving its zero blocks as holes.
func writeRaw(ctx context.Context, in *input, out outFile, _ string, _ Options) error {
	if err := copySparse(ctx, in, out); err != nil {
		return err
	}
	if err := out.Truncate(in.size); err != nil {
		return fmt.Errorf("raw: %w", err)
	}
	return nil
}

// copySparse writes the non-zero blocks of the disk at the same offsets of
// out; the caller sizes out so the rest reads back as zero. Adjacent
// non-zero blocks are gathered into one write.
func copySparse(ctx context.Context, in *input, out outFile) error {
	run := make([]byte, 0, readChunk)
	var runOff int64
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		if _, err := out.WriteAt(run, runOff); err != nil {
			return fmt.Errorf("write at offset %d: %w", runOff, err)
		}
		run = run[:0]
		return nil
	}
	err := walk(ctx, in, sparseBlock, func(off int64, b []byte) error {
		if b == nil || runOff+int64(len(run)) != off || len(run)+len(b) > cap(run) {
			if err := flush(); err != nil {
				return err
			}
			runOff = off
		}
		run = append(run, b...)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}
