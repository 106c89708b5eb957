package format

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestGCETarball(t *testing.T) {
	raw := makeDisk(t, 64*mib, testPatches(64*mib))
	out := filepath.Join(t.TempDir(), "disk.tar.gz")
	if err := Convert(context.Background(), raw, out, GCE, testOpts); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := bufio.NewReader(f)
	head, err := gz.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	// The gzip header: no file name (FLG 0) and the caller's time.
	if head[3] != 0 {
		t.Errorf("gzip flags %#x, want 0 (no name, no comment, no extra)", head[3])
	}
	if got, want := binary.LittleEndian.Uint32(head[4:]), uint32(testOpts.Time.Unix()); got != want {
		t.Errorf("gzip mtime %d, want %d", got, want)
	}

	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	plain := bufio.NewReader(zr)
	block, err := plain.Peek(512)
	if err != nil {
		t.Fatal(err)
	}
	// GNU tar's old header: magic "ustar " and version " \0".
	if got := string(block[257:265]); got != "ustar  \x00" {
		t.Errorf("tar magic %q, want the GNU one", got)
	}
	tr := tar.NewReader(plain)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Name != "disk.raw" || hdr.Typeflag != tar.TypeReg || hdr.Size != 64*mib || hdr.Mode != 0o644 ||
		hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(testOpts.Time) {
		t.Errorf("tar entry %+v", hdr)
	}
	got := sha256.New()
	if _, err := io.Copy(got, tr); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Errorf("tar has more than one entry (%v)", err)
	}
	if want := plainHash(t, raw); !bytes.Equal(got.Sum(nil), want[:]) {
		t.Error("disk.raw in the tarball differs from the input")
	}

	// GNU tar reads it the same way.
	if list := testutil.Run(t, gnuTar(t), "-tvzf", out); !strings.Contains(list, " disk.raw\n") {
		t.Errorf("tar -tvzf lists no disk.raw:\n%s", list)
	}

	again := filepath.Join(t.TempDir(), "disk.tar.gz")
	if err := Convert(context.Background(), raw, again, GCE, testOpts); err != nil {
		t.Fatal(err)
	}
	if plainHash(t, out) != plainHash(t, again) {
		t.Error("two conversions differ")
	}
}

// TestGCEHeaderMatchesGNUTar compares our tar header with the one GNU tar
// writes with --format=oldgnu, the command GCE documents. The only
// difference allowed is archive/tar writing the device numbers, which
// oldgnu leaves empty, as zeros (and so the checksum).
func TestGCEHeaderMatchesGNUTar(t *testing.T) {
	tar := gnuTar(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("ballast!"), mib/8), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "disk.tar.gz")
	if err := Convert(context.Background(), raw, out, GCE, testOpts); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	ours := make([]byte, 512)
	if _, err := io.ReadFull(zr, ours); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tar, "--format=oldgnu", "--mtime=@"+strconv.FormatInt(testOpts.Time.Unix(), 10),
		"--owner=0", "--group=0", "--numeric-owner", "--mode=0644", "-cf", "-", "disk.raw")
	cmd.Dir = dir
	gnu, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar: %v", err)
	}
	for i := range 512 {
		checksum, devices := i >= 148 && i < 156, i >= 329 && i < 345
		if ours[i] != gnu[i] && !checksum && !devices {
			t.Errorf("header byte %d: ours %q, GNU tar %q", i, ours[i], gnu[i])
		}
	}
}

// gnuTar finds GNU tar, the reader GCE's documentation uses; a BSD tar would answer differently.
func gnuTar(t testing.TB) string {
	t.Helper()
	tar := testutil.Tool(t, "tar", "tar")
	v := testutil.Run(t, tar, "--version")
	testutil.Need(t, strings.Contains(v, "GNU tar"), "GNU tar, but %s is %s", tar, strings.SplitN(v, "\n", 2)[0])
	return tar
}
