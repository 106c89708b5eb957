package digest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDigest(t *testing.T) {
	// sha256("abc"), FIPS 180-2 appendix B.1.
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got, err := Reader(strings.NewReader("abc")); err != nil || got != abc {
		t.Errorf("Reader = %s, %v", got, err)
	}
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("abc"), 0o644)
	if got, err := File(p); err != nil || got != abc {
		t.Errorf("File = %s, %v", got, err)
	}
	if fi, err := Stat(p); err != nil || fi != (FileInfo{Size: 3, SHA256: abc}) {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("File of a missing file succeeded")
	}
}
