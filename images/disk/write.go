package disk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
)

// Content fills one partition. It writes through w at offsets relative to
// the partition start; size is the partition's size, and writes past it fail
// rather than spill into the next partition. The partition starts out zeroed,
// and what Content leaves unwritten stays a hole in the sparse image.
type Content func(w io.WriterAt, size int64) error

// region is the io.WriterAt a Content gets: one partition of the image.
type region struct {
	w      io.WriterAt
	offset int64
	size   int64
}

func (r *region) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > r.size || int64(len(p)) > r.size-off {
		return 0, fmt.Errorf("write of %d bytes at offset %d exceeds the partition's %d bytes", len(p), off, r.size)
	}
	return r.w.WriteAt(p, r.offset+off)
}

// FromReader copies src to the start of the partition. Content shorter than
// the partition is fine; longer is an error giving both sizes. All-zero
// blocks are skipped, since the partition starts zeroed, so images of mostly
// empty file systems stay sparse.
func FromReader(src io.Reader) Content {
	return func(w io.WriterAt, size int64) error {
		const block = 4096
		buf := make([]byte, 1<<20)
		var off int64
		for {
			n, err := io.ReadFull(src, buf)
			if n > 0 {
				if int64(n) > size-off {
					rest, cerr := io.Copy(io.Discard, src)
					if cerr != nil {
						return fmt.Errorf("read content: %w", cerr)
					}
					return fmt.Errorf("content is %d bytes but the partition holds %d", off+int64(n)+rest, size)
				}
				for i := 0; i < n; i += block {
					chunk := buf[i:min(i+block, n)]
					if allZero(chunk) {
						continue
					}
					if _, werr := w.WriteAt(chunk, off+int64(i)); werr != nil {
						return werr
					}
				}
				off += int64(n)
			}
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return nil
			case err != nil:
				return fmt.Errorf("read content: %w", err)
			}
		}
	}
}

// FromFile copies the file at path to the start of the partition, like FromReader.
func FromFile(path string) Content {
	return func(w io.WriterAt, size int64) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Size() > size {
			return fmt.Errorf("%s is %d bytes but the partition holds %d", path, st.Size(), size)
		}
		if err := FromReader(f)(w, size); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
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
// contents filled by its Content. Partitions without content stay zero. On
// error the partial file is removed.
func Write(path string, l Layout, contents map[contract.PartitionName]Content) (err error) {
	if err := l.validate(); err != nil {
		return fmt.Errorf("disk %s: %w", path, err)
	}
	for name := range contents {
		if _, err := l.Partition(name); err != nil {
			return fmt.Errorf("disk %s: content given for %q: %w", path, name, err)
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
		fill, ok := contents[p.Name]
		if !ok || fill == nil {
			continue
		}
		if err := fill(&region{w: f, offset: p.Offset, size: p.Size}, p.Size); err != nil {
			return fmt.Errorf("disk %s: partition %s: %w", path, p.Name, err)
		}
	}
	return nil
}

// writeTable writes the protective MBR and both GPT copies.
func writeTable(f *os.File, l Layout) error {
	table, err := gpt.New(SectorSize, uint64(l.Size/SectorSize), gpt.FromUUID(l.DiskGUID))
	if err != nil {
		return err
	}
	for i, p := range l.Partitions {
		typ, err := gpt.ParseGUID(p.Type)
		if err != nil {
			return fmt.Errorf("partition %s type: %w", p.Name, err)
		}
		err = table.SetPartition(gpt.Partition{
			Number: i + 1, Type: typ, ID: gpt.FromUUID(p.UUID), Name: string(p.Name), Attributes: p.Attributes,
			FirstLBA: uint64(p.Offset / SectorSize), LastLBA: uint64((p.Offset+p.Size)/SectorSize - 1),
		})
		if err != nil {
			return fmt.Errorf("partition %s: %w", p.Name, err)
		}
	}
	return table.WriteNew(f)
}
