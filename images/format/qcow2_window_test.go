package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// inflate4K inflates each blob with zlib limited to QEMU's 4 KiB window,
// asking for a little output at a time so zlib must rely on its window
// rather than on the output buffer: QEMU itself inflates a whole cluster in
// one call, which hides a too-far back reference that other readers reject.
const inflate4K = `
import sys, zlib, struct
data = sys.stdin.buffer.read()
i = 0
while i < len(data):
    n = struct.unpack('>I', data[i:i+4])[0]
    blob = data[i+4:i+4+n]
    i += 4 + n
    d = zlib.decompressobj(-12)
    out = b''
    while len(out) < 65536:
        out += d.decompress(blob, 512)
        blob = d.unconsumed_tail
`

// TestQCOW2CompressedWindow reads the compressed clusters back through the
// L1 and L2 tables and inflates them with real zlib and QEMU's window bits.
func TestQCOW2CompressedWindow(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	raw := makeDisk(t, 64*mib, testPatches(64*mib))
	out := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := Convert(context.Background(), raw, out, QCOW2, Options{Compress: true}); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	l1Size, l1Off := be.Uint32(img[36:]), be.Uint64(img[40:])
	var blobs bytes.Buffer
	n := 0
	for i := range uint64(l1Size) {
		l2 := be.Uint64(img[l1Off+8*i:]) &^ qcowCopied
		if l2 == 0 {
			continue
		}
		for j := range uint64(qcowL2Entries) {
			e := be.Uint64(img[l2+8*j:])
			if e&qcowCompressed == 0 {
				continue
			}
			off := e & (1<<qcowCSizeShift - 1)
			extra := (e &^ qcowCompressed) >> qcowCSizeShift
			end := (off/sectorSize + extra + 1) * sectorSize
			binary.Write(&blobs, binary.BigEndian, uint32(end-off))
			blobs.Write(img[off:end])
			n++
		}
	}
	if n == 0 {
		t.Fatal("no compressed clusters found")
	}
	cmd := exec.Command("python3", "-c", inflate4K)
	cmd.Stdin = &blobs
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("inflating %d clusters with a 4 KiB window: %v\n%s", n, err, msg)
	}
}
