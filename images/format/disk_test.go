package format

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

const mib = 1 << 20

// patch is a stretch of bytes a test disk carries at an offset.
type patch struct {
	off  int64
	data []byte
}

func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, ^seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testPatches fills a disk of the given size with the cases each format has
// to get right: the first and last sector, a stretch crossing a cluster
// boundary, incompressible and compressible data, data repeating at a
// distance beyond QEMU's 4 KiB QCOW2 deflate window, explicitly written
// zeros (stored, but all zero), and a stretch crossing a VMDK grain table
// (32 MiB), and one in the middle. Patches that do not fit a small disk are left out.
func testPatches(size int64) []patch {
	text := bytes.Repeat([]byte("ballast: ready, container host "), mib/32)
	repeat := bytes.Repeat(pseudoRandom(7, 8192), 32)
	ps := []patch{
		{0, bytes.Repeat([]byte{0xEB}, 512)},
		{size - 512, bytes.Repeat([]byte{0x55, 0xAA}, 256)},
		{mib + 64<<10 - 100, pseudoRandom(1, 200)},
		{5 * mib, pseudoRandom(2, 300<<10)},
		{9*mib + 123*512, text},
		{13 * mib, repeat},
		{17 * mib, make([]byte, mib)},
		{32*mib - 3000, pseudoRandom(3, 6000)},
		// Past 512 MiB on large disks: a second QCOW2 L2 table.
		{size/2 + 12345*512 - 7, pseudoRandom(4, 70000)},
	}
	var fit []patch
	for _, p := range ps {
		if p.off+int64(len(p.data)) <= size {
			fit = append(fit, p)
		}
	}
	return fit
}

// makeDisk writes a sparse raw disk of size bytes carrying the patches.
func makeDisk(t testing.TB, size int64, ps []patch) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if _, err := f.WriteAt(p.data, p.off); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// fileHash hashes a file's content. Holes and zero blocks go in as their
// offsets rather than their bytes: reading gigabytes of holes is slow.
func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	h := sha256.New()
	in, err := openInput(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fmt.Fprintf(h, "size %d\n", in.size)
	err = walk(context.Background(), in, 4096, func(off int64, b []byte) error {
		if b == nil {
			fmt.Fprintf(h, "zero %d\n", off)
		}
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// plainHash hashes a file's bytes as they are.
func plainHash(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, mib)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
