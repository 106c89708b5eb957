package image

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	sector = 512
	mib    = 1 << 20
)

// gptHeader is the part of a GPT header the growth checks need (UEFI spec 5.3.2).
type gptHeader struct {
	alternateLBA, lastUsableLBA, entriesLBA uint64
	entries, entrySize                      uint32
}

// entryBytes is the size of the partition entry array, which the backup GPT also keeps at the
// disk's end.
func (h gptHeader) entryBytes() int64 { return int64(h.entries) * int64(h.entrySize) }

func readGPTHeader(t *testing.T, f *os.File) gptHeader {
	t.Helper()
	b := make([]byte, 92)
	if _, err := f.ReadAt(b, sector); err != nil {
		t.Fatalf("%s: GPT header: %v", f.Name(), err)
	}
	if string(b[:8]) != "EFI PART" {
		t.Fatalf("%s: no GPT header at LBA 1", f.Name())
	}
	le := binary.LittleEndian
	return gptHeader{
		alternateLBA:  le.Uint64(b[32:]),
		lastUsableLBA: le.Uint64(b[48:]),
		entriesLBA:    le.Uint64(b[72:]),
		entries:       le.Uint32(b[80:]),
		entrySize:     le.Uint32(b[84:]),
	}
}

// gptPartitionAt returns the first and last LBA of the partition entry that starts at offset.
func gptPartitionAt(t *testing.T, f *os.File, h gptHeader, offset int64) (first, last uint64) {
	t.Helper()
	e := make([]byte, h.entrySize)
	for i := range int64(h.entries) {
		if _, err := f.ReadAt(e, int64(h.entriesLBA)*sector+i*int64(h.entrySize)); err != nil {
			t.Fatalf("%s: GPT entry %d: %v", f.Name(), i, err)
		}
		first, last = binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		if first != 0 && int64(first)*sector == offset {
			return first, last
		}
	}
	t.Fatalf("%s: no GPT entry starts at byte %d", f.Name(), offset)
	return 0, 0
}

// grownDataEnd is where the data partition must end (exclusive, in bytes) once grown on a disk of
// diskSize bytes: the backup GPT takes the disk's tail (its entry array, then its header in the last
// sector), and the partition ends on the last MiB boundary before that, like every partition the
// builder lays out (docs/contracts.md).
func grownDataEnd(h gptHeader, diskSize int64) int64 {
	tail := (h.entryBytes()+sector-1)/sector*sector + sector
	return (diskSize - tail) / mib * mib
}

// ext4Size reads the size the ext4 filesystem at offset in the file says it has (block count
// times block size, from its superblock).
func ext4Size(t *testing.T, f *os.File, offset int64) int64 {
	t.Helper()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, offset+1024); err != nil {
		t.Fatalf("%s: ext4 superblock: %v", f.Name(), err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xef53 {
		t.Fatalf("%s: no ext4 superblock at byte %d", f.Name(), offset+1024)
	}
	blocks := uint64(le.Uint32(sb[0x04:]))
	if le.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT: the count has a high half
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	return int64(blocks) * int64(1024<<le.Uint32(sb[0x18:]))
}

// Mozilla's CA store has held between 130 and 160 roots for a decade; far fewer means the
// ca-certificates package the image got is not the one it should carry.
const minMozillaRoots = 100

// mozillaBundle checks the CA bundle the build put into the root (the factory copy of
// /etc/ssl/certs/ca-certificates.crt) against the certificates of the ca-certificates package in the
// same root: every PEM block in it must be an X.509 CA certificate, nothing else may be in it, and
// it must hold each of the package's certificates exactly once. It returns the bundle's sha256 and
// the number of the package's .crt files, for the comparison with what the booted image has.
func mozillaBundle(t *testing.T) (sum string, crts int) {
	t.Helper()
	root := filepath.Join(buildDir, "work", "rootfs")
	files, err := filepath.Glob(filepath.Join(root, "usr/share/ca-certificates/mozilla/*.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < minMozillaRoots {
		t.Fatalf("the root has %d .crt files of ca-certificates, want at least %d", len(files), minMozillaRoots)
	}
	want := map[string]string{} // DER → file
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := pemCertificates(b)
		if err != nil || len(certs) != 1 {
			t.Fatalf("%s: want one certificate, got %d (%v)", f, len(certs), err)
		}
		want[string(certs[0].Raw)] = filepath.Base(f)
	}

	bundle, err := os.ReadFile(filepath.Join(root, "usr/share/factory/etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatalf("CA bundle: %v", err)
	}
	certs, err := pemCertificates(bundle)
	if err != nil {
		t.Fatalf("CA bundle: %v", err)
	}
	seen := map[string]bool{}
	isrg := false
	for i, c := range certs {
		der := string(c.Raw)
		switch {
		case want[der] == "":
			t.Errorf("CA bundle: certificate %d (%s) is not one of the package's", i+1, c.Subject)
		case seen[der]:
			t.Errorf("CA bundle: %s (%s) is in it twice", want[der], c.Subject)
		}
		if !c.IsCA {
			t.Errorf("CA bundle: certificate %d (%s) is not a CA", i+1, c.Subject)
		}
		seen[der] = true
		isrg = isrg || c.Subject.CommonName == "ISRG Root X1"
	}
	var missing []string
	for der, f := range want {
		if !seen[der] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("CA bundle lacks %d of the package's %d certificates, e.g. %s", len(missing), len(want), strings.Join(missing[:min(len(missing), 5)], ", "))
	}
	// Let's Encrypt's root: most TLS servers an image talks to chain to it.
	if !isrg {
		t.Error("CA bundle lacks ISRG Root X1")
	}
	if len(certs) != len(files) {
		t.Errorf("CA bundle holds %d certificates, the package %d .crt files", len(certs), len(files))
	}
	s := sha256.Sum256(bundle)
	return hex.EncodeToString(s[:]), len(files)
}

// pemCertificates parses every PEM block of b as an X.509 certificate. Anything but whitespace
// between the blocks is an error: pem.Decode would skip it silently.
func pemCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for len(bytes.TrimSpace(rest)) > 0 {
		at := bytes.Index(rest, []byte("-----BEGIN "))
		if at < 0 || len(bytes.TrimSpace(rest[:at])) > 0 {
			return out, fmt.Errorf("text that is not PEM after certificate %d", len(out))
		}
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out, fmt.Errorf("PEM block %d does not decode", len(out)+1)
		}
		if block.Type != "CERTIFICATE" {
			return out, fmt.Errorf("PEM block %d is a %s", len(out)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return out, fmt.Errorf("certificate %d: %v", len(out)+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}
