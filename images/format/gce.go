package format

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/klauspost/compress/gzip"
)

// gceEntry is the one name GCE image import looks for inside the tarball.
const gceEntry = "disk.raw"

// gceBlock is how much of the disk goes to the compressor per call; holes
// are fed from one zero buffer without being read.
const gceBlock = 1 << 16

// writeGCE writes the disk as disk.raw in a gzip-compressed tar. GCE asks
// for tar's GNU ("oldgnu") header, which a single regular entry with a short
// name gets from archive/tar's FormatGNU; disks past 8 GiB use GNU's binary
// size field, which GNU tar and GCE read. archive/tar cannot write sparse
// entries, so the holes are stored as zeros, which gzip shrinks to almost
// nothing.
func writeGCE(ctx context.Context, in *input, out outFile, _ string, opts Options) error {
	mtime := archiveTime(opts)
	bw := bufio.NewWriterSize(out, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, deflateLevel)
	if err != nil {
		return fmt.Errorf("gce: %w", err)
	}
	// No file name and a caller's time: the header is the same every build.
	zw.Header = gzip.Header{ModTime: mtime, OS: 255}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     gceEntry,
		Size:     in.size,
		Mode:     0o644,
		ModTime:  mtime,
		Format:   tar.FormatGNU,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("gce: tar header: %w", err)
	}
	zero := make([]byte, gceBlock)
	err = walk(ctx, in, gceBlock, func(off int64, b []byte) error {
		if b == nil {
			b = zero[:min(gceBlock, in.size-off)]
		}
		if _, err := tw.Write(b); err != nil {
			return fmt.Errorf("gce: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("gce: tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gce: gzip: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gce: %w", err)
	}
	return nil
}

// archiveTime is the time tar entries carry: the caller's, in whole seconds,
// and no earlier than the epoch, the earliest a tar header holds.
func archiveTime(opts Options) time.Time {
	mtime := opts.Time.UTC().Truncate(time.Second)
	if opts.Time.IsZero() || mtime.Before(time.Unix(0, 0)) {
		return time.Unix(0, 0).UTC()
	}
	return mtime
}
