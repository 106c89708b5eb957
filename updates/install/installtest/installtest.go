// Package installtest makes what the updater's tests write and read: a real update payload
// (a root of arbitrary bytes, its dm-verity tree from images/verity, a UKI per slot, all
// zstd-compressed under content-addressed names) and a Ballast disk image whose slot a runs.
package installtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/verity"
	"github.com/klauspost/compress/zstd"
)

// MiB is a mebibyte.
const MiB = 1 << 20

// Sizes are the partition sizes of Disk: roots of up to 2 MiB.
var Sizes = disk.Sizes{ESP: 1 * MiB, Root: 2 * MiB, Verity: 1 * MiB, Data: 1 * MiB}

// Root returns blocks verity data blocks of pseudo-random bytes from seed, with a run of zeros
// so that compression has something to do.
func Root(seed uint64, blocks int) []byte {
	r := rand.New(rand.NewPCG(seed, ^seed))
	b := make([]byte, blocks*contract.VerityBlockSize)
	for i := range b[:len(b)/2] {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Tree builds the verity tree of root with a salt derived from seed, as the builder would.
func Tree(t testing.TB, root []byte, seed string) ([]byte, verity.Result, []byte) {
	t.Helper()
	salt := contract.Derive("verity-salt", seed)
	params := verity.Params{Salt: salt[:], UUID: contract.DerivedUUID("verity", seed)}
	size, err := verity.HashSize(int64(len(root)), params)
	if err != nil {
		t.Fatal(err)
	}
	w := &buffer{b: make([]byte, size)}
	res, err := verity.Build(bytes.NewReader(root), int64(len(root)), w, params)
	if err != nil {
		t.Fatal(err)
	}
	return w.b, res, salt[:]
}

type buffer struct{ b []byte }

func (w *buffer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(w.b)) {
		return 0, fmt.Errorf("write of %d bytes at %d past %d", len(p), off, len(w.b))
	}
	return copy(w.b[off:], p), nil
}

// Payload is a built payload: payload.json's content and where each compressed file is.
type Payload struct {
	contract.Payload
	Dir   string            // holds the compressed files under their names
	Files map[string]string // payload file name → path
	Raw   map[string][]byte // payload file name → decompressed bytes
}

// UKI is the test's stand-in for the UKI of a slot at a version: not a PE file, but bytes that
// say what they are.
func UKI(version string, slot contract.Slot, rootHash string) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "UKI version=%s ballast.slot=%s roothash=%s\n", version, slot, rootHash), 64)
}

// MakePayload builds the payload of variant at version whose root is root (a whole number of
// verity blocks) in dir.
func MakePayload(t testing.TB, dir, variant, version string, root []byte) *Payload {
	t.Helper()
	tree, res, salt := Tree(t, root, variant+"/"+version)
	p := &Payload{
		Payload: contract.Payload{
			Variant: variant, Version: version, Arch: contract.DefaultArch.Info().Machine,
			RootHash:     hex.EncodeToString(res.RootHash),
			VerityBlocks: res.DataBlocks,
			Salt:         hex.EncodeToString(salt),
			UKI:          map[contract.Slot]contract.PayloadFile{},
		},
		Dir: dir, Files: map[string]string{}, Raw: map[string][]byte{},
	}
	p.Root = p.add(t, "root", root)
	p.Verity = p.add(t, "verity", tree)
	for _, s := range []contract.Slot{contract.SlotA, contract.SlotB} {
		p.UKI[s] = p.add(t, "uki-"+string(s), UKI(version, s, p.RootHash))
	}
	return p
}

func (p *Payload) add(t testing.TB, kind string, raw []byte) contract.PayloadFile {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	packed := enc.EncodeAll(raw, nil)
	sum, rawSum := sha256.Sum256(packed), sha256.Sum256(raw)
	f := contract.PayloadFile{
		Name: contract.PayloadFileName(hex.EncodeToString(sum[:]), kind),
		Size: int64(len(packed)), SHA256: hex.EncodeToString(sum[:]),
		RawSize: int64(len(raw)), RawSHA256: hex.EncodeToString(rawSum[:]),
	}
	path := filepath.Join(p.Dir, f.Name)
	if err := os.WriteFile(path, packed, 0o644); err != nil {
		t.Fatal(err)
	}
	p.Files[f.Name], p.Raw[f.Name] = path, raw
	return f
}

// Disk is a disk image whose slot a holds a root and its tree, and the boot of slot a from it.
type Disk struct {
	Path    string
	Layout  disk.Layout
	Running contract.Boot
	RootA   []byte // what root-a holds
	TreeA   []byte // what verity-a holds
}

// MakeDisk writes a disk image with images/disk into dir, slot a holding rootA.
func MakeDisk(t testing.TB, dir string, rootA []byte) *Disk {
	t.Helper()
	tree, res, salt := Tree(t, rootA, "running")
	l, err := disk.Plan(contract.DefaultArch, Sizes, "installtest", res.RootHash)
	if err != nil {
		t.Fatal(err)
	}
	d := &Disk{Path: filepath.Join(dir, "disk.raw"), Layout: l, RootA: rootA, TreeA: tree}
	err = disk.Write(d.Path, l, map[contract.PartitionName]disk.Content{
		contract.PartRootA:   disk.FromReader(bytes.NewReader(rootA)),
		contract.PartVerityA: disk.FromReader(bytes.NewReader(tree)),
		contract.PartData:    disk.FromReader(bytes.NewReader([]byte("settings and containers"))),
	})
	if err != nil {
		t.Fatal(err)
	}
	uuid := func(n contract.PartitionName) contract.UUID {
		u, err := l.UUID(n)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	d.Running = contract.Boot{
		RootHash: hex.EncodeToString(res.RootHash), Slot: contract.SlotA,
		Root: uuid(contract.PartRootA), Verity: uuid(contract.PartVerityA), Data: uuid(contract.PartData),
		VerityBlocks: res.DataBlocks, VeritySalt: hex.EncodeToString(salt),
	}
	if err := d.Running.Validate(); err != nil {
		t.Fatal(err)
	}
	return d
}

// Partition returns the bytes partition n holds now.
func (d *Disk) Partition(t testing.TB, n contract.PartitionName) []byte {
	t.Helper()
	p, err := d.Layout.Partition(n)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, p.Size)
	if _, err := io.ReadFull(io.NewSectionReader(f, p.Offset, p.Size), b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Snapshot is the sha256 of every partition but those of slot, and of the disk's head and tail
// (MBR, both GPTs): what writing slot must leave alone.
func (d *Disk) Snapshot(t testing.TB, slot contract.Slot, withTables bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.Layout.Partitions {
		if p.Name == slot.Root() || p.Name == slot.Verity() {
			continue
		}
		sum := sha256.Sum256(d.Partition(t, p.Name))
		out[string(p.Name)] = hex.EncodeToString(sum[:])
	}
	if withTables {
		b, err := os.ReadFile(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		first := d.Layout.Partitions[0].Offset
		last := d.Layout.Partitions[len(d.Layout.Partitions)-1]
		head, tail := sha256.Sum256(b[:first]), sha256.Sum256(b[last.Offset+last.Size:])
		out["head"], out["tail"] = hex.EncodeToString(head[:]), hex.EncodeToString(tail[:])
	}
	return out
}
