package installer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"sort"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/ballast-os/ballast/contract"

	"golang.org/x/sys/unix"
)

// chunk is the size of the writes to the target: large and aligned to every sector and erase
// block size in use, so the device sees few, whole requests.
const chunk = 4 << 20

// headSize is how much of the image's start is held back until the compressed stream checked
// out: it holds the protective MBR and the primary GPT, so a disk whose image turned out
// tampered or truncated is never left with a partition table pointing into it.
const headSize = 1 << 20

// hashReader counts and hashes what is read through it.
type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// progress is called with the bytes written so far.
type progress func(written int64)

// writeImage decompresses the image from rc onto the target while checking the compressed
// stream against img, and syncs. On any error after the first write the places a partition
// table would be found (the first and last MiB of the image's span) are zeroed again.
func writeImage(ctx context.Context, target *os.File, rc io.Reader, img contract.InstallImage, report progress) (err error) {
	hr := &hashReader{r: io.LimitReader(rc, img.Size+1), h: sha256.New()}
	dec, err := zstd.NewReader(hr, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("image %s: zstd: %w", img.File, err)
	}
	defer dec.Close()

	head := make([]byte, min(headSize, img.DiskSize))
	if _, err := io.ReadFull(dec, head); err != nil {
		return fmt.Errorf("image %s: zstd: decompress the first %d bytes: %w", img.File, len(head), err)
	}
	wrote := false
	defer func() {
		if err != nil && wrote {
			if zerr := zeroEnds(target, img.DiskSize); zerr != nil {
				err = fmt.Errorf("%w (and clearing the partial image: %v)", err, zerr)
			}
		}
	}()
	// The decompressor runs ahead of the writes by a few chunks: under emulation both are slow,
	// and the disk's writes go on while the next chunk inflates.
	type piece struct {
		b   []byte
		err error
	}
	pieces, free := make(chan piece, 3), make(chan []byte, 4)
	for range 4 {
		free <- make([]byte, chunk)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	defer func() {
		// The decoder is closed after this, so the goroutine must be out of it first.
		close(stop)
		<-done
	}()
	go func() {
		defer close(done)
		defer close(pieces)
		for off := int64(len(head)); off < img.DiskSize; {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			n, rerr := io.ReadFull(dec, buf[:min(int64(chunk), img.DiskSize-off)])
			off += int64(n)
			select {
			case pieces <- piece{b: buf[:n], err: rerr}:
			case <-stop:
				return
			}
			if rerr != nil {
				return
			}
		}
	}()
	st, err := target.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", target.Name(), err)
	}
	blockDev := st.Mode()&os.ModeDevice != 0
	off := int64(len(head))
	for p := range pieces {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n := len(p.b); n > 0 {
			wrote = true
			if err := writeChunk(target, p.b, off, blockDev); err != nil {
				return fmt.Errorf("write %s at offset %d: %w", target.Name(), off, err)
			}
			off += int64(n)
			if report != nil {
				report(off)
			}
		}
		if p.err != nil {
			return fmt.Errorf("image %s: zstd: decompressed %d bytes, want %d: %w", img.File, off, img.DiskSize, p.err)
		}
		free <- p.b[:cap(p.b)]
	}
	if off != img.DiskSize {
		return fmt.Errorf("image %s: zstd: decompressed %d bytes, want %d", img.File, off, img.DiskSize)
	}
	// The stream must end where the image does, and be exactly the bytes install.json hashed.
	if n, _ := io.Copy(io.Discard, dec); n > 0 {
		return fmt.Errorf("image %s: decompresses to more than the %d bytes of disk_size", img.File, img.DiskSize)
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return fmt.Errorf("image %s: %w", img.File, err)
	}
	if hr.n != img.Size {
		return fmt.Errorf("image %s: %d compressed bytes, install.json says %d", img.File, hr.n, img.Size)
	}
	if got := hex.EncodeToString(hr.h.Sum(nil)); got != img.SHA256 {
		return fmt.Errorf("image %s: sha256 %s, install.json says %s", img.File, got, img.SHA256)
	}
	if err := target.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", target.Name(), err)
	}
	wrote = true
	if _, err := target.WriteAt(head, 0); err != nil {
		return fmt.Errorf("write %s at offset 0: %w", target.Name(), err)
	}
	if err := target.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", target.Name(), err)
	}
	return nil
}

// writeChunk writes b at off. On a block device a chunk of zeros is zeroed with BLKZEROOUT
// instead, which the device (or the kernel, writing zeros itself where the device cannot) does
// without the data crossing the bus: most of a fresh image is zeros.
func writeChunk(f *os.File, b []byte, off int64, blockDev bool) error {
	if blockDev && len(b)%512 == 0 && off%512 == 0 && !slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
		r := [2]uint64{uint64(off), uint64(len(b))}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0]))); errno == 0 {
			return nil
		}
		// Fall back to writing the zeros.
	}
	_, err := f.WriteAt(b, off)
	return err
}

// zeroEnds zeroes the first and the last MiB of the first size bytes of f.
func zeroEnds(f *os.File, size int64) error {
	z := make([]byte, min(probeSize, size))
	if _, err := f.WriteAt(z, 0); err != nil {
		return err
	}
	if _, err := f.WriteAt(z, size-int64(len(z))); err != nil {
		return err
	}
	return f.Sync()
}

// RegionError is a region of the written disk whose bytes differ from the image's.
type RegionError struct {
	Region contract.InstallRegion
	Got    string
}

func (e *RegionError) Error() string {
	if e.Region.Zero {
		return fmt.Sprintf("region %q (offset %d, %d bytes of zeros) reads back with %s", e.Region.Name, e.Region.Offset, e.Region.Size, e.Got)
	}
	return fmt.Sprintf("region %q (offset %d, %d bytes) reads back with sha256 %s, want %s", e.Region.Name, e.Region.Offset, e.Region.Size, e.Got, e.Region.SHA256)
}

// verify reads every region back from the target, past the page cache (dropCache), and compares
// it with its hash. Two workers take the regions, largest first: under emulation hashing is
// the slow part, and one worker's read overlaps the other's hashing.
func verify(ctx context.Context, target *os.File, regions []contract.InstallRegion, dropCache func(*os.File) error) error {
	if err := dropCache(target); err != nil {
		return fmt.Errorf("drop the page cache of %s: %w", target.Name(), err)
	}
	order := slices.Clone(regions)
	sort.SliceStable(order, func(i, j int) bool { return order[i].Size > order[j].Size })
	queue := make(chan contract.InstallRegion, len(order))
	for _, r := range order {
		queue <- r
	}
	close(queue)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, verifyWorkers)
	for range verifyWorkers {
		go func() {
			buf := make([]byte, chunk)
			for r := range queue {
				if err := verifyRegion(ctx, target, r, buf); err != nil {
					cancel()
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range verifyWorkers {
		if err := <-errs; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	return first
}

const verifyWorkers = 2

func verifyRegion(ctx context.Context, target *os.File, r contract.InstallRegion, buf []byte) error {
	h := sha256.New()
	for off := r.Offset; off < r.Offset+r.Size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := buf[:min(int64(len(buf)), r.Offset+r.Size-off)]
		if err := readAtFull(target, b, off); err != nil {
			return fmt.Errorf("read back region %q at offset %d: %w", r.Name, off, err)
		}
		if r.Zero {
			// A run of zeros is checked as such; sha256 is the slow part of reading back.
			if i := slices.IndexFunc(b, func(c byte) bool { return c != 0 }); i >= 0 {
				return &RegionError{Region: r, Got: fmt.Sprintf("a non-zero byte at offset %d", off+int64(i))}
			}
		} else {
			h.Write(b)
		}
		off += int64(len(b))
	}
	if r.Zero {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != r.SHA256 {
		return &RegionError{Region: r, Got: got}
	}
	return nil
}
