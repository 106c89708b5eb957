package disk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Source fills one partition. It writes through r, which covers exactly the
// partition's bytes and starts out zeroed; what it leaves unwritten stays a
// hole in the sparse image.
type Source func(r *Region) error

// Region is an io.WriterAt over one partition of the image being written.
// Offsets are relative to the partition start; writes past its end fail
// rather than spill into the next partition.
type Region struct {
	w      io.WriterAt
	name   string
	offset int64
	size   int64
}

// Name is the partition's name.
func (r *Region) Name() string { return r.name }

// Size is the partition's size in bytes.
func (r *Region) Size() int64 { return r.size }

// WriteAt writes p at off bytes into the partition.
func (r *Region) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > r.size || int64(len(p)) > r.size-off {
		return 0, fmt.Errorf("partition %s: write of %d bytes at offset %d exceeds its %d bytes", r.name, len(p), off, r.size)
	}
	n, err := r.w.WriteAt(p, r.offset+off)
	if err != nil {
		return n, fmt.Errorf("partition %s: %w", r.name, err)
	}
	return n, nil
}

// FromReader copies src to the start of the partition. Content shorter than
// the partition is fine; longer is an error giving both sizes. All-zero
// blocks are skipped, since the region starts zeroed, so images of mostly
// empty file systems stay sparse.
func FromReader(src io.Reader) Source {
	return func(r *Region) error {
		const block = 4096
		buf := make([]byte, 1<<20)
		var off int64
		for {
			n, err := io.ReadFull(src, buf)
			if n > 0 {
				if int64(n) > r.size-off {
					rest, cerr := io.Copy(io.Discard, src)
					if cerr != nil {
						return fmt.Errorf("partition %s: read content: %w", r.name, cerr)
					}
					return fmt.Errorf("partition %s: content is %d bytes but the partition holds %d",
						r.name, off+int64(n)+rest, r.size)
				}
				for i := 0; i < n; i += block {
					chunk := buf[i:min(i+block, n)]
					if allZero(chunk) {
						continue
					}
					if _, werr := r.WriteAt(chunk, off+int64(i)); werr != nil {
						return werr
					}
				}
				off += int64(n)
			}
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return nil
			case err != nil:
				return fmt.Errorf("partition %s: read content: %w", r.name, err)
			}
		}
	}
}

// FromFile copies the file at path to the start of the partition, like FromReader.
func FromFile(path string) Source {
	return func(r *Region) error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("partition %s: %w", r.name, err)
		}
		defer f.Close()
		return FromReader(f)(r)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Write creates the disk image at path: a sparse file of l.Size bytes with a
// protective MBR, the primary and backup GPT, and each partition named in
// contents filled by its Source. Partitions without a source stay empty. On
// error the partial file is removed.
func Write(path string, l Layout, contents map[string]Source) (err error) {
	if err := l.validate(); err != nil {
		return fmt.Errorf("disk %s: %w", path, err)
	}
	for name := range contents {
		if _, ok := l.Partition(name); !ok {
			return fmt.Errorf("disk %s: content given for %q, which is not a partition of the layout", path, name)
		}
	}

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("disk %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	// Truncate to the full size first: every byte not written below stays a
	// hole, and the backup GPT lands at the real end of the disk.
	if err := f.Truncate(l.Size); err != nil {
		return fmt.Errorf("disk %s: %w", path, err)
	}
	if err := writeTable(f, l); err != nil {
		return fmt.Errorf("disk %s: %w", path, err)
	}
	// Table order, not map order, so a failing run always fails the same way.
	for _, p := range l.Partitions {
		src, ok := contents[p.Name]
		if !ok || src == nil {
			continue
		}
		if err := src(&Region{w: f, name: p.Name, offset: p.Offset, size: p.Size}); err != nil {
			return fmt.Errorf("disk %s: %w", path, err)
		}
	}
	return nil
}

// writeTable writes the protective MBR and both GPT copies with go-diskfs.
func writeTable(f *os.File, l Layout) error {
	table := &gpt.Table{
		LogicalSectorSize:  SectorSize,
		PhysicalSectorSize: SectorSize,
		ProtectiveMBR:      true,
		GUID:               l.DiskGUID,
	}
	for i, p := range l.Partitions {
		table.Partitions = append(table.Partitions, &gpt.Partition{
			Index:      i + 1,
			Start:      uint64(p.Offset / SectorSize),
			End:        uint64((p.Offset+p.Size)/SectorSize - 1),
			Size:       uint64(p.Size),
			Type:       gpt.Type(p.Type),
			Name:       p.Name,
			GUID:       p.UUID,
			Attributes: p.Attributes,
		})
	}
	if err := table.Write(f, l.Size); err != nil {
		return fmt.Errorf("write GPT: %w", err)
	}
	return nil
}
