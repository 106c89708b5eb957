package luks2

import (
	"bytes"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

// memDev is an in-memory block device for tests and benchmarks.
type memDev []byte

func (m memDev) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDev) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

// detRand is a seeded random source, so formatted images can be compared byte for byte.
func detRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{'l', 'u', 'k', 's', seed}) }

func testKey(seed byte) []byte {
	k := make([]byte, VolumeKeySize)
	io.ReadFull(detRand(seed+100), k)
	return k
}

// image makes a sparse image file of size bytes (what `truncate -s` does).
func image(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

func openRW(t testing.TB, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func cryptsetup(t testing.TB) string { return testutil.Tool(t, "cryptsetup", "cryptsetup-bin") }

// keyFile writes a passphrase to a file for --key-file: cryptsetup takes it byte for byte.
func keyFile(t testing.TB, pass []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "key")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pass); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// runStatus runs cryptsetup and returns its exit code and output, for checks that expect failure.
func runStatus(t testing.TB, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s %v: %v", bin, args, err)
	return -1, ""
}

// dumpVolumeKey asks cryptsetup for the volume key the passphrase in keyFile opens.
func dumpVolumeKey(t testing.TB, bin, img, keyFile string) []byte {
	t.Helper()
	out := testutil.Run(t, bin, "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", keyFile, img)
	m := regexp.MustCompile(`(?s)(?:MK|Volume key) dump:\s*((?:[0-9a-f]{2}\s+)+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no MK dump in luksDump output:\n%s", out)
	}
	k, err := hex.DecodeString(strings.Join(strings.Fields(m[1]), ""))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n got %x\nwant %x", what, got, want)
	}
}
