package format

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
)

// TestWalk compares walk, which skips holes, with a plain read of every
// block, for data that starts and ends inside blocks, a short last block
// and zeros stored as data.
func TestWalk(t *testing.T) {
	disks := []struct {
		name string
		size int64
		ps   []patch
	}{
		{"empty", 3 * mib, nil},
		{"patterns", 8 * mib, testPatches(8 * mib)},
		{"short last block", 2*mib + 1536, []patch{{2*mib + 1000, []byte("end")}, {5, []byte("start")}}},
		{"adjacent extents", 4 * mib, []patch{{4095, []byte{1, 2}}, {8192, []byte{3}}, {mib - 1, []byte{4}}, {mib + 4096, make([]byte, 4096)}}},
	}
	for _, d := range disks {
		path := makeDisk(t, d.size, d.ps)
		whole, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, bs := range []int64{512, 4096, 65536, 3 * mib} {
			t.Run(fmt.Sprintf("%s/%d", d.name, bs), func(t *testing.T) {
				var want []string
				for off := int64(0); off < d.size; off += bs {
					b := whole[off:min(off+bs, d.size)]
					want = append(want, describe(off, b, bytes.Count(b, []byte{0}) == len(b)))
				}
				in, err := openInput(path)
				if err != nil {
					t.Fatal(err)
				}
				defer in.Close()
				var got []string
				err = walk(context.Background(), in, bs, func(off int64, b []byte) error {
					if b == nil {
						b = make([]byte, min(bs, d.size-off))
						got = append(got, describe(off, b, true))
						return nil
					}
					got = append(got, describe(off, b, false))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("walk:\n got %v\nwant %v", got, want)
				}
			})
		}
	}
}

func describe(off int64, b []byte, zero bool) string {
	if zero {
		return fmt.Sprintf("%d+%d:zero", off, len(b))
	}
	return fmt.Sprintf("%d+%d:%x", off, len(b), sha256.Sum256(b))
}
