package luks2

import (
	"fmt"
	"testing"
)

// Format's cost is the PBKDF2 of each keyslot, the AF split (4000 SHA-256 diffusions) and the
// 16 MiB wipe of the keyslots area; Unlock's is the PBKDF2, the AF merge and the digest.
func BenchmarkFormat(b *testing.B) {
	for _, iter := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("pbkdf2-%d", iter), func(b *testing.B) {
			dev := make(memDev, DataOffset+4096)
			for b.Loop() {
				if _, err := Format(dev, int64(len(dev)), FormatOptions{Rand: detRand(0),
					Keyslots: []KeyslotSpec{{Passphrase: []byte("p"), Iterations: iter}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnlock(b *testing.B) {
	for _, iter := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("pbkdf2-%d", iter), func(b *testing.B) {
			dev := make(memDev, DataOffset+4096)
			h, err := Format(dev, int64(len(dev)), FormatOptions{Rand: detRand(0),
				Keyslots: []KeyslotSpec{{Passphrase: []byte("p"), Iterations: iter}}})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, _, err := h.Unlock(dev, []byte("p")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
