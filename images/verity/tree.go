package verity

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// chunkBytes is how much one worker reads at a time: large enough that a pread costs little
// next to hashing it, small enough that the workers stay busy to the end.
const chunkBytes = 1 << 20

// layout is the shape of the tree for one data size. levels[0] hashes the data blocks; each
// level above hashes the one below until a level is a single block, whose hash is the root.
// On disk the levels go top first, as veritysetup and the kernel expect.
type layout struct {
	dataBlocks    uint64
	dataBlockSize int
	hashBlockSize int
	levels        []level
}

type level struct {
	blocks uint64
	offset int64 // byte offset in the hash device
}

func newLayout(dataSize int64, p Params) (layout, error) {
	if dataSize <= 0 {
		return layout{}, fmt.Errorf("verity: data size %d: need at least one %d-byte block", dataSize, p.DataBlockSize)
	}
	if dataSize%int64(p.DataBlockSize) != 0 {
		return layout{}, fmt.Errorf("verity: data size %d is not a multiple of the %d-byte data block size",
			dataSize, p.DataBlockSize)
	}
	l := layout{
		dataBlocks:    uint64(dataSize) / uint64(p.DataBlockSize),
		dataBlockSize: p.DataBlockSize,
		hashBlockSize: p.HashBlockSize,
	}
	// Format 1 packs digests without padding; both sizes are powers of two, so this is too.
	perBlock := uint64(p.HashBlockSize / sha256.Size)
	for n := l.dataBlocks; n > 1; {
		n = (n + perBlock - 1) / perBlock
		l.levels = append(l.levels, level{blocks: n})
	}
	off := int64(treeOffset(p.HashBlockSize))
	for i := len(l.levels) - 1; i >= 0; i-- {
		l.levels[i].offset = off
		off += int64(l.levels[i].blocks) * int64(p.HashBlockSize)
	}
	return l, nil
}

func (l layout) hashSize() int64 {
	size := int64(treeOffset(l.hashBlockSize))
	for _, lv := range l.levels {
		size += int64(lv.blocks) * int64(l.hashBlockSize)
	}
	return size
}

// build writes every level and returns the root hash. With a single data block there are no
// levels and the root is that block's hash, as in veritysetup.
func (l layout) build(data io.ReaderAt, hash io.WriterAt, salt []byte) ([]byte, error) {
	src := blockSource{r: data, blocks: l.dataBlocks, blockSize: l.dataBlockSize, name: "data"}
	for i, lv := range l.levels {
		buf := make([]byte, lv.blocks*uint64(l.hashBlockSize))
		if err := hashBlocks(src, salt, buf); err != nil {
			return nil, err
		}
		if _, err := hash.WriteAt(buf, lv.offset); err != nil {
			return nil, fmt.Errorf("verity: write hash level %d at offset %d: %w", i, lv.offset, err)
		}
		src = blockSource{r: bytes.NewReader(buf), blocks: lv.blocks, blockSize: l.hashBlockSize,
			name: fmt.Sprintf("hash level %d", i)}
	}
	root := make([]byte, sha256.Size)
	if err := hashBlocks(src, salt, root); err != nil {
		return nil, err
	}
	return root, nil
}

// blockSource is a run of equal blocks to hash; name says which in errors.
type blockSource struct {
	r         io.ReaderAt
	blocks    uint64
	blockSize int
	name      string
}

// hashBlocks writes sha256(salt || block i) at out[i*32:] for every block of src, spreading
// chunks of blocks over GOMAXPROCS workers. Each worker owns its buffer and hash state and
// writes a disjoint part of out, so nothing is shared but the chunk counter.
func hashBlocks(src blockSource, salt []byte, out []byte) error {
	chunk := uint64(max(1, chunkBytes/src.blockSize))
	chunks := (src.blocks + chunk - 1) / chunk
	workers := int(min(uint64(runtime.GOMAXPROCS(0)), chunks))
	var (
		next   atomic.Uint64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, chunk*uint64(src.blockSize))
			h := sha256.New()
			for !failed.Load() {
				c := next.Add(1) - 1
				if c >= chunks {
					return
				}
				first := c * chunk
				n := min(chunk, src.blocks-first)
				b := buf[:n*uint64(src.blockSize)]
				if err := readFull(src.r, b, int64(first)*int64(src.blockSize)); err != nil {
					errs[w] = fmt.Errorf("verity: read %s blocks %d-%d: %w", src.name, first, first+n-1, err)
					failed.Store(true)
					return
				}
				for j := range n {
					h.Reset()
					h.Write(salt)
					h.Write(b[j*uint64(src.blockSize) : (j+1)*uint64(src.blockSize)])
					d := (first + j) * sha256.Size
					h.Sum(out[d:d])
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readFull reads exactly len(b) bytes at off; io.ReaderAt may report io.EOF alongside a full read.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("short read (%d of %d bytes at offset %d): %w", n, len(b), off, io.ErrUnexpectedEOF)
	}
	return err
}
