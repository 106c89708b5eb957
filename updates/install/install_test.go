package install_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/tests/testutil"
	"github.com/ballast-os/ballast/updates/install"
	"github.com/ballast-os/ballast/updates/install/installtest"
)

func request(d *installtest.Disk, p *installtest.Payload) install.Request {
	return install.Request{
		Disk: d.Path, Slot: contract.SlotB, Running: d.Running, Payload: p.Payload,
		Root: p.Files[p.Root.Name], Verity: p.Files[p.Verity.Name],
	}
}

// tables reads both GPT copies of the image.
func tables(t *testing.T, path string) (primary, backup []gpt.Partition) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pt, err := gpt.ReadPrimary(f, 512)
	if err != nil {
		t.Fatalf("primary GPT: %v", err)
	}
	bt, err := gpt.ReadBackup(f, 512, st.Size())
	if err != nil {
		t.Fatalf("backup GPT: %v", err)
	}
	return pt.Partitions(), bt.Partitions()
}

func partUUID(t *testing.T, parts []gpt.Partition, name contract.PartitionName) contract.UUID {
	t.Helper()
	for _, p := range parts {
		if p.Name == string(name) {
			return p.ID.UUID()
		}
	}
	t.Fatalf("no partition %s", name)
	return contract.UUID{}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	d := installtest.MakeDisk(t, dir, installtest.Root(1, 200))
	p := installtest.MakePayload(t, dir, "qemu", "2.0.0", installtest.Root(2, 256))
	before := d.Snapshot(t, contract.SlotB, false)

	req := request(d, p)
	var last, total int64
	req.Progress = func(done, all int64) { last, total = done, all }
	res, err := install.Install(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if last != p.Root.RawSize+p.Verity.RawSize || total != last || res.Written != last {
		t.Errorf("progress ended at %d of %d, result says %d written", last, total, res.Written)
	}

	// The slot holds the root and the tree, the rest of the disk is as it was.
	rootB, verityB := d.Partition(t, contract.PartRootB), d.Partition(t, contract.PartVerityB)
	if !bytes.Equal(rootB[:p.Root.RawSize], p.Raw[p.Root.Name]) {
		t.Error("root-b does not hold the payload's root")
	}
	if !bytes.Equal(verityB[:p.Verity.RawSize], p.Raw[p.Verity.Name]) {
		t.Error("verity-b does not hold the payload's tree")
	}
	if after := d.Snapshot(t, contract.SlotB, false); !maps.Equal(before, after) {
		t.Errorf("other partitions changed:\nbefore %v\nafter  %v", before, after)
	}

	// Both GPT copies give slot b the halves of the new root hash, and nothing else changed.
	hash, _ := hex.DecodeString(p.RootHash)
	wantRoot, wantVerity, _ := install.SlotUUIDs(hash)
	if res.RootUUID != wantRoot || res.VerityUUID != wantVerity {
		t.Errorf("result UUIDs %s %s, want %s %s", res.RootUUID, res.VerityUUID, wantRoot, wantVerity)
	}
	if wantRoot.String() != p.RootHash[:8]+"-"+p.RootHash[8:12]+"-"+p.RootHash[12:16]+"-"+p.RootHash[16:20]+"-"+p.RootHash[20:32] {
		t.Errorf("root PARTUUID %s is not the first half of %s", wantRoot, p.RootHash)
	}
	primary, backup := tables(t, d.Path)
	for i, parts := range [][]gpt.Partition{primary, backup} {
		for _, lp := range d.Layout.Partitions {
			want := lp.UUID
			switch lp.Name {
			case contract.PartRootB:
				want = wantRoot
			case contract.PartVerityB:
				want = wantVerity
			}
			if got := partUUID(t, parts, lp.Name); got != want {
				t.Errorf("GPT copy %d: %s has PARTUUID %s, want %s", i, lp.Name, got, want)
			}
		}
	}

	// sgdisk agrees the tables are sound and reads the new GUIDs.
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	if out := testutil.Run(t, sgdisk, "-v", d.Path); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	for n, want := range map[string]contract.UUID{"4": wantRoot, "5": wantVerity} {
		out := testutil.Run(t, sgdisk, "-i", n, d.Path)
		if !strings.Contains(strings.ToLower(out), "partition unique guid: "+want.String()) {
			t.Errorf("sgdisk -i %s: want unique GUID %s:\n%s", n, want, out)
		}
	}

	// veritysetup verifies the slot as written against the payload's root hash.
	veritysetup := testutil.Tool(t, "veritysetup", "cryptsetup-bin")
	rootFile, hashFile := filepath.Join(dir, "root-b"), filepath.Join(dir, "verity-b")
	os.WriteFile(rootFile, rootB[:p.Root.RawSize], 0o644)
	os.WriteFile(hashFile, verityB, 0o644)
	testutil.Run(t, veritysetup, "verify", rootFile, hashFile, p.RootHash)

	// Installing the same payload again (an apply that is resumed) gives the same disk.
	snap := d.Snapshot(t, contract.SlotA, true)
	if _, err := install.Install(context.Background(), request(d, p)); err != nil {
		t.Fatalf("second install: %v", err)
	}
	if again := d.Snapshot(t, contract.SlotA, true); !maps.Equal(snap, again) {
		t.Error("installing the same payload twice changed the disk")
	}
}

// corrupt returns a copy of the payload file name with one byte of the compressed data flipped.
func corrupt(t *testing.T, p *installtest.Payload, name string) string {
	t.Helper()
	b, err := os.ReadFile(p.Files[name])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInstallRefuses: each request fails with an error saying why, and the running slot, the
// other partitions and, for everything found wrong before the slot is complete, the partition
// tables are left as they were.
func TestInstallRefuses(t *testing.T) {
	dir := t.TempDir()
	rootA := installtest.Root(1, 200)
	good := installtest.MakePayload(t, dir, "qemu", "2.0.0", installtest.Root(2, 256))
	big := installtest.MakePayload(t, t.TempDir(), "qemu", "2.1.0", installtest.Root(3, 3*256))
	// A payload whose files are whole and match payload.json, but whose tree is another root's:
	// only rebuilding the tree from the disk finds it.
	other := installtest.MakePayload(t, t.TempDir(), "qemu", "2.2.0", installtest.Root(4, 256))
	for _, tc := range []struct {
		name   string
		change func(d *installtest.Disk, r *install.Request)
		want   string
	}{
		{"running slot", func(d *installtest.Disk, r *install.Request) { r.Slot = contract.SlotA }, "is the running slot"},
		{"bad slot", func(d *installtest.Disk, r *install.Request) { r.Slot = "c" }, `slot "c"`},
		{"same root hash as the running slot", func(d *installtest.Disk, r *install.Request) { r.Payload.RootHash = d.Running.RootHash },
			"is the running slot's"},
		{"root larger than its partition", func(d *installtest.Disk, r *install.Request) {
			r.Payload, r.Root, r.Verity = big.Payload, big.Files[big.Root.Name], big.Files[big.Verity.Name]
		}, "partition root-b holds 2097152"},
		{"another disk", func(d *installtest.Disk, r *install.Request) {
			r.Running.Root = contract.DerivedUUID("elsewhere", "x")
		}, "not the disk this host booted from"},
		{"corrupt root file", func(d *installtest.Disk, r *install.Request) { r.Root = corrupt(t, good, good.Root.Name) }, "payload file"},
		{"wrong raw sha256", func(d *installtest.Disk, r *install.Request) {
			r.Payload.Root.RawSHA256 = strings.Repeat("0", 64)
		}, "decompressed sha256"},
		{"wrong raw size", func(d *installtest.Disk, r *install.Request) { r.Payload.Verity.RawSize += 4096 }, "verity tree is"},
		{"verity file swapped for the root file", func(d *installtest.Disk, r *install.Request) { r.Verity = r.Root }, "payload file"},
		{"tree of another root", func(d *installtest.Disk, r *install.Request) {
			r.Payload.Verity, r.Verity = other.Verity, other.Files[other.Verity.Name]
			r.Payload.Salt = other.Salt
		}, "differs"},
		{"root hash not proved", func(d *installtest.Disk, r *install.Request) {
			r.Payload.RootHash = strings.Repeat("ab", 32)
		}, "the root as written has root hash"},
		{"missing file", func(d *installtest.Disk, r *install.Request) { r.Root = filepath.Join(dir, "nope") }, "no such file"},
		{"cancelled", nil, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := installtest.MakeDisk(t, t.TempDir(), rootA)
			req := request(d, good)
			ctx := context.Background()
			if tc.change != nil {
				tc.change(d, &req)
			} else {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			before := d.Snapshot(t, contract.SlotB, true)
			_, err := install.Install(ctx, req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Install: %v; want an error with %q", err, tc.want)
			}
			t.Log(err)
			if after := d.Snapshot(t, contract.SlotB, true); !maps.Equal(before, after) {
				t.Errorf("the running slot, another partition or a GPT changed:\nbefore %v\nafter  %v", before, after)
			}
			if !bytes.Equal(d.Partition(t, contract.PartRootA)[:len(rootA)], rootA) {
				t.Error("root-a changed")
			}
		})
	}
}

func TestDecompress(t *testing.T) {
	dir := t.TempDir()
	p := installtest.MakePayload(t, dir, "qemu", "1.0", installtest.Root(5, 16))
	read := func(path string, f contract.PayloadFile) ([]byte, error) {
		r, err := install.Decompress(path, f)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	got, err := read(p.Files[p.Root.Name], p.Root)
	if err != nil || !bytes.Equal(got, p.Raw[p.Root.Name]) {
		t.Fatalf("Decompress: %d bytes, %v", len(got), err)
	}
	long := filepath.Join(dir, "long")
	b, _ := os.ReadFile(p.Files[p.Root.Name])
	os.WriteFile(long, append(b, b...), 0o644) // two frames: twice the bytes
	for _, tc := range []struct {
		name string
		path string
		f    func(contract.PayloadFile) contract.PayloadFile
		want string
	}{
		{"compressed size", p.Files[p.Root.Name], func(f contract.PayloadFile) contract.PayloadFile { f.Size--; return f }, "payload.json says"},
		{"compressed sha256", p.Files[p.Root.Name], func(f contract.PayloadFile) contract.PayloadFile { f.SHA256 = strings.Repeat("1", 64); return f }, "sha256 of"},
		{"raw size smaller", p.Files[p.Root.Name], func(f contract.PayloadFile) contract.PayloadFile { f.RawSize -= 1; return f }, "more than"},
		{"raw size larger", p.Files[p.Root.Name], func(f contract.PayloadFile) contract.PayloadFile { f.RawSize += 1; return f }, "decompresses to"},
		{"more frames than promised", long, func(f contract.PayloadFile) contract.PayloadFile { return f }, "more than"},
		{"not zstd", p.Files[p.Root.Name], nil, "decompress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, f := tc.path, p.Root
			if tc.f == nil {
				path = filepath.Join(t.TempDir(), "plain")
				os.WriteFile(path, p.Raw[p.Root.Name], 0o644)
			} else {
				f = tc.f(f)
			}
			if _, err := read(path, f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("read: %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// TestInstallOnBlockDevice writes a slot through a real block device (a loop device with its
// partitions), as on a host, and checks the image behind it.
func TestInstallOnBlockDevice(t *testing.T) {
	dir := t.TempDir()
	d := installtest.MakeDisk(t, dir, installtest.Root(1, 200))
	p := installtest.MakePayload(t, dir, "qemu", "2.0.0", installtest.Root(2, 256))
	loop := testutil.Loop(t, d.Path, "-P")
	req := request(d, p)
	req.Disk = loop
	if _, err := install.Install(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Partition(t, contract.PartRootB)[:p.Root.RawSize], p.Raw[p.Root.Name]) {
		t.Error("root-b in the image behind the loop device does not hold the payload's root")
	}
	hash, _ := hex.DecodeString(p.RootHash)
	wantRoot, _, _ := install.SlotUUIDs(hash)
	primary, backup := tables(t, d.Path)
	if partUUID(t, primary, contract.PartRootB) != wantRoot || partUUID(t, backup, contract.PartRootB) != wantRoot {
		t.Error("root-b's PARTUUID did not reach the image")
	}
}
