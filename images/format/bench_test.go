package format

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// benchPatches makes a 256 MiB disk about a quarter full, like a fresh
// image: incompressible stretches (compressed binaries, the verity tree),
// compressible ones (text, tables) and zero-filled ones written as data.
func benchPatches(size int64) []patch {
	text := pseudoText(4 * mib)
	var ps []patch
	for i := int64(0); i < size/(16*mib); i++ {
		base := i * 16 * mib
		ps = append(ps,
			patch{base, pseudoRandom(uint64(i), 2*mib)},
			patch{base + 4*mib, text[:2*mib]},
			patch{base + 8*mib, make([]byte, mib)},
		)
	}
	return ps
}

// pseudoText is compressible but not trivially so.
func pseudoText(n int) []byte {
	words := []string{"ballast ", "container ", "host ", "verity ", "root ", "slot ", "\n", "0x1f3a ", "settings "}
	r := pseudoRandom(99, n)
	b := make([]byte, 0, n+16)
	for i := 0; len(b) < n; i++ {
		b = append(b, words[int(r[i])%len(words)]...)
	}
	return b[:n]
}

func BenchmarkConvert(b *testing.B) {
	const size = 256 * mib
	raw := makeDisk(b, size, benchPatches(size))
	cases := []struct {
		name string
		f    Format
		opts Options
	}{
		{"raw", Raw, testOpts},
		{"qcow2", QCOW2, testOpts},
		{"qcow2-compressed", QCOW2, Options{Compress: true}},
		{"vmdk", VMDK, testOpts},
		{"vhd", VHD, testOpts},
		{"gce", GCE, testOpts},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			out := filepath.Join(b.TempDir(), "out"+Ext(c.f))
			b.SetBytes(size)
			for b.Loop() {
				if err := Convert(context.Background(), raw, out, c.f, c.opts); err != nil {
					b.Fatal(err)
				}
			}
			st, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Size())/mib, "MiB-size")
			b.ReportMetric(allocMiB(st), "MiB-alloc")
		})
	}
}
