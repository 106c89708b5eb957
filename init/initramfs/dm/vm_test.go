package dm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/tests/vmtest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { vmtest.Main(m) }

const (
	vmDataBlocks = 2048 // 8 MiB of 4096-byte blocks
	vmBadBlock   = 100  // the block flipped in the corrupted copy
)

// TestVM boots this package's tests in a QEMU guest with dm-verity: two disks made by
// `veritysetup format` (data, hash) and a copy of the data with one flipped byte.
func TestVM(t *testing.T) {
	veritysetup := testutil.Tool(t, "veritysetup", "cryptsetup-bin")
	dir := t.TempDir()
	data, hash, bad := filepath.Join(dir, "data.img"), filepath.Join(dir, "hash.img"), filepath.Join(dir, "bad.img")
	content := make([]byte, vmDataBlocks*4096)
	rng := rand.NewChaCha8([32]byte{'b', 'a', 'l', 'l', 'a', 's', 't'})
	rng.Read(content)
	if err := os.WriteFile(data, content, 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.Run(t, veritysetup, "format", data, hash)
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("veritysetup output has no %s:\n%s", name, out)
		}
		return m[1]
	}
	content[vmBadBlock*4096+17] ^= 0x80
	if err := os.WriteFile(bad, content, 0o644); err != nil {
		t.Fatal(err)
	}
	vmtest.Run(t, vmtest.Options{
		Modules: []string{"virtio_pci", "virtio_blk", "dm-verity"},
		Disks:   []string{data, hash, bad},
		Params:  map[string]string{"roothash": field("Root hash"), "salt": field("Salt"), "blocks": field("Data blocks")},
	})
}

// guestVerity is the production table (see docs/contracts.md) over the guest's disks.
func guestVerity(t *testing.T, dataDev, hashDev string, restart bool) Verity {
	blocks, err := strconv.ParseUint(vmtest.Param("blocks"), 10, 64)
	if err != nil {
		t.Fatalf("blocks parameter: %v", err)
	}
	return Verity{
		DataDev: dataDev, HashDev: hashDev,
		DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: blocks, HashStartBlock: 1,
		Algorithm: "sha256", RootHash: vmtest.Param("roothash"), Salt: vmtest.Param("salt"),
		RestartOnCorrupt: restart,
	}
}

func sysDev(t *testing.T, disk string) string {
	b, err := os.ReadFile("/sys/class/block/" + disk + "/dev")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestGuestVersion(t *testing.T) {
	vmtest.GuestOnly(t)
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Version()
	if err != nil || v[0] != 4 {
		t.Fatalf("Version() = %v, %v", v, err)
	}
	t.Logf("device-mapper interface %d.%d.%d", v[0], v[1], v[2])
}

func TestGuestVerityRoot(t *testing.T) {
	vmtest.GuestOnly(t)
	// Data by major:minor (what the initramfs passes), hash by path: the kernel takes both.
	tg, err := guestVerity(t, sysDev(t, "vda"), "/dev/vdb", true).Target()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := CreateDevice("root", "BALLAST-VERITY-root", true, []Target{tg})
	if err != nil {
		t.Fatal(err)
	}
	node := NodePath(dev)
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil || st.Rdev != dev || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Fatalf("%s: stat %v, rdev %d:%d, want block device %d:%d", node, err, unix.Major(st.Rdev), unix.Minor(st.Rdev), unix.Major(dev), unix.Minor(dev))
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/dm/name", unix.Major(dev), unix.Minor(dev))); strings.TrimSpace(string(b)) != "root" {
		t.Errorf("sysfs dm/name = %q", b)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/ro", unix.Major(dev), unix.Minor(dev))); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("sysfs ro = %q, want 1", b)
	}

	// Every block read through verity must equal the raw data disk.
	want := sumPrefix(t, "/dev/vda", int64(tg.Length)*512)
	f, err := os.Open(node)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatalf("read %s: %v", node, err)
	}
	if n != int64(tg.Length)*512 || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("read %d bytes from %s, content differs from /dev/vda", n, node)
	}

	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st2, err := c.Status("root")
	if err != nil || len(st2) != 1 || st2[0].Type != "verity" || st2[0].Params != "V" || st2[0].Length != tg.Length {
		t.Errorf("Status = %+v, %v; want one verity target with status V", st2, err)
	}
	tbl, err := c.Table("root")
	if err != nil || len(tbl) != 1 {
		t.Fatalf("Table = %+v, %v", tbl, err)
	}
	wantTable := strings.Replace(tg.Params, "/dev/vdb", sysDev(t, "vdb"), 1) // the kernel reports devices as major:minor
	if tbl[0].Params != wantTable {
		t.Errorf("kernel table:\n %q\nwant\n %q", tbl[0].Params, wantTable)
	}

	// A second device of the same name must fail and leave the first alone.
	if _, err := c.Create("root", "", true, []Target{tg}); !errors.Is(err, unix.EBUSY) {
		t.Errorf("second create: err = %v, want EBUSY", err)
	}
	if _, err := c.Status("root"); err != nil {
		t.Errorf("first device gone after failed second create: %v", err)
	}
	if err := c.Remove("root"); !errors.Is(err, unix.EBUSY) {
		t.Errorf("remove while open: err = %v, want EBUSY", err)
	}
	f.Close()
	if err := RemoveDevice("root"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(node); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after remove: %v", node, err)
	}
}

func TestGuestVerityDetectsCorruption(t *testing.T) {
	vmtest.GuestOnly(t)
	// Without restart_on_corruption the kernel answers EIO, which the test can observe.
	tg, err := guestVerity(t, "/dev/vdc", "/dev/vdb", false).Target()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := CreateDevice("bad", "", true, []Target{tg})
	if err != nil {
		t.Fatal(err)
	}
	defer RemoveDevice("bad")
	f, err := os.Open(NodePath(dev))
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	if _, err := f.ReadAt(block, (vmBadBlock-1)*4096); err != nil {
		t.Errorf("intact block %d: %v", vmBadBlock-1, err)
	}
	if _, err := f.ReadAt(block, vmBadBlock*4096); !errors.Is(err, unix.EIO) {
		t.Errorf("corrupted block %d: err = %v, want EIO", vmBadBlock, err)
	}
	f.Close()
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.Status("bad"); err != nil || len(st) != 1 || st[0].Params != "C" {
		t.Errorf("Status = %+v, %v; want C (corruption seen)", st, err)
	}
}

func TestGuestFailedLoadCleansUp(t *testing.T) {
	vmtest.GuestOnly(t)
	tests := []struct {
		name string
		v    func() Verity
	}{
		{"missing device", func() Verity { return guestVerity(t, "/dev/vdz", "/dev/vdb", true) }},
		{"more blocks than the disk", func() Verity {
			v := guestVerity(t, "/dev/vda", "/dev/vdb", true)
			v.DataBlocks *= 4
			return v
		}},
	}
	for _, tc := range tests {
		tg, err := tc.v().Target()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := CreateDevice("broken", "", true, []Target{tg}); err == nil || !strings.Contains(err.Error(), `load table into "broken"`) {
			t.Errorf("%s: err = %v, want a table load error", tc.name, err)
		}
		if err := RemoveDevice("broken"); !errors.Is(err, unix.ENXIO) {
			t.Errorf("%s: half-made device left behind (remove: %v)", tc.name, err)
		}
	}
	// dm-verity refuses a writable table ("Device must be readonly"), hence readOnly in Create.
	tg, _ := guestVerity(t, "/dev/vda", "/dev/vdb", false).Target()
	if _, err := CreateDevice("rw", "", false, []Target{tg}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("verity table without DM_READONLY_FLAG: err = %v, want EINVAL", err)
	}
	if err := RemoveDevice("rw"); !errors.Is(err, unix.ENXIO) {
		t.Errorf("half-made device rw left behind (remove: %v)", err)
	}
}

func TestGuestBufferFullRetry(t *testing.T) {
	vmtest.GuestOnly(t)
	tg, err := guestVerity(t, "/dev/vda", "/dev/vdb", true).Target()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateDevice("small", "", true, []Target{tg}); err != nil {
		t.Fatal(err)
	}
	defer RemoveDevice("small")
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// First show that a small buffer really makes the kernel set DM_BUFFER_FULL_FLAG...
	small := headerSize + 16
	buf, err := marshalRequest(request{name: "small", flags: unix.DM_STATUS_TABLE_FLAG}, small)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), unix.DM_TABLE_STATUS, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		t.Fatal(errno)
	}
	if r, _ := unmarshalReply(buf); r.flags&unix.DM_BUFFER_FULL_FLAG == 0 {
		t.Fatalf("kernel did not set DM_BUFFER_FULL_FLAG for a %d-byte buffer", small)
	}
	// ...then that Table retries until the line fits.
	c.bufSize = small
	tbl, err := c.Table("small")
	if err != nil || len(tbl) != 1 || !strings.HasSuffix(tbl[0].Params, "1 restart_on_corruption") {
		t.Fatalf("Table with a tiny first buffer = %+v, %v", tbl, err)
	}
}

func sumPrefix(t *testing.T, path string, n int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}
