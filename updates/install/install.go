// Package install writes an update payload into the inactive slot of a Ballast disk: the root
// file system into root-<slot>, the verity tree into verity-<slot>, and then the slot's GPT
// entries, whose PARTUUIDs become the two halves of the new root hash so the new UKI's command
// line finds them.
//
// Nothing is trusted on the way: every file is checked against payload.json while it is
// decompressed onto the disk, the tree on the disk is rebuilt from the root on the disk and must
// prove Payload.RootHash, and the partition table changes last. The running slot is never
// written, and neither is a disk that does not hold the running root. The ESP is not this
// package's: the caller removes the slot's boot entries before (esp.RemoveSlot), so nothing boots
// a half-written slot, and stages its UKI after.
package install

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/images/verity"
	"golang.org/x/sys/unix"
)

// chunk is how much is decompressed and written at a time.
const chunk = 1 << 20

// Request says what to write where.
type Request struct {
	// Disk is the whole disk holding both slots: a block device, or an image file.
	Disk string
	// Slot is the slot to write. It must not be Running.Slot.
	Slot contract.Slot
	// Running is the boot in progress, from the kernel command line: its slot, root hash and
	// partitions are left alone.
	Running contract.Boot
	Payload contract.Payload
	// Root and Verity are the compressed payload files (Payload.Root, Payload.Verity) on disk.
	Root, Verity string
	// Progress, when set, is told the decompressed bytes written so far and the total.
	Progress func(done, total int64)
}

// Result describes the slot as written.
type Result struct {
	Slot       contract.Slot
	RootHash   string
	RootUUID   contract.UUID // the PARTUUID root-<slot> has now
	VerityUUID contract.UUID // the PARTUUID verity-<slot> has now
	Written    int64         // decompressed bytes written
}

// SlotUUIDs returns the PARTUUIDs of a slot's root and verity partitions for a root hash: its
// first and last 16 bytes, as the Discoverable Partitions Specification asks of any slot (the
// same values contract.PartitionUUID gives slot a).
func SlotUUIDs(rootHash []byte) (root, verity contract.UUID, err error) {
	return contract.SlotUUIDs(rootHash)
}

// slotParts is where a slot lives on the disk.
type slotParts struct {
	root, verity gpt.Partition
}

// Install writes req.Payload into req.Slot of req.Disk. On any error before the partition table
// is rewritten, the slot's PARTUUIDs still name what was there before, and no UKI names the new
// root hash; the running slot is never written either way.
func Install(ctx context.Context, req Request) (Result, error) {
	p := req.Payload
	fail := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("install %s %s into slot %s of %s: %w", p.Variant, p.Version, req.Slot, req.Disk, err)
	}
	rootHash, err := checkRequest(req)
	if err != nil {
		return fail(err)
	}
	newRoot, newVerity, err := SlotUUIDs(rootHash)
	if err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(req.Disk, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	ss, err := sectorSize(f)
	if err != nil {
		return fail(err)
	}
	tbl, err := gpt.ReadPrimary(f, ss)
	if err != nil {
		return fail(fmt.Errorf("primary GPT: %w", err))
	}
	parts, err := findSlot(tbl, req)
	if err != nil {
		return fail(err)
	}
	if err := checkUUIDs(tbl, parts, newRoot, newVerity); err != nil {
		return fail(err)
	}
	rootOff, rootSize := extent(parts.root, ss)
	verOff, verSize := extent(parts.verity, ss)
	if p.Root.RawSize > rootSize {
		return fail(fmt.Errorf("root is %d bytes, partition %s holds %d", p.Root.RawSize, req.Slot.Root(), rootSize))
	}
	if p.Verity.RawSize > verSize {
		return fail(fmt.Errorf("verity tree is %d bytes, partition %s holds %d", p.Verity.RawSize, req.Slot.Verity(), verSize))
	}

	total := p.Root.RawSize + p.Verity.RawSize
	var done int64
	progress := func(n int64) {
		done += n
		if req.Progress != nil {
			req.Progress(done, total)
		}
	}
	if err := writePartition(ctx, f, rootOff, req.Root, p.Root, progress); err != nil {
		return fail(fmt.Errorf("partition %s: %w", req.Slot.Root(), err))
	}
	if err := writePartition(ctx, f, verOff, req.Verity, p.Verity, progress); err != nil {
		return fail(fmt.Errorf("partition %s: %w", req.Slot.Verity(), err))
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := checkTree(f, rootOff, verOff, verSize, p, rootHash); err != nil {
		return fail(err)
	}
	if err := writeTable(f, tbl, parts, newRoot, newVerity); err != nil {
		return fail(err)
	}
	return Result{Slot: req.Slot, RootHash: p.RootHash, RootUUID: newRoot, VerityUUID: newVerity, Written: done}, nil
}

// checkRequest refuses what must never be written, before the disk is opened, and returns the
// payload's root hash.
func checkRequest(req Request) ([]byte, error) {
	p := req.Payload
	if err := req.Slot.Validate(); err != nil {
		return nil, err
	}
	if err := req.Running.Slot.Validate(); err != nil {
		return nil, fmt.Errorf("running slot: %w", err)
	}
	if req.Slot == req.Running.Slot {
		return nil, fmt.Errorf("slot %s is the running slot", req.Slot)
	}
	rootHash, err := hex.DecodeString(p.RootHash)
	if err != nil || len(rootHash) != 32 {
		return nil, fmt.Errorf("payload roothash %q is not a sha256", p.RootHash)
	}
	if p.RootHash == req.Running.RootHash {
		return nil, fmt.Errorf("payload roothash %s is the running slot's: both slots would have the same PARTUUIDs", p.RootHash)
	}
	if _, err := hex.DecodeString(p.Salt); err != nil || len(p.Salt) > 2*verity.MaxSaltSize {
		return nil, fmt.Errorf("payload salt %q is not hex of at most %d bytes", p.Salt, verity.MaxSaltSize)
	}
	if p.VerityBlocks == 0 || p.Root.RawSize != int64(p.VerityBlocks)*contract.VerityBlockSize {
		return nil, fmt.Errorf("payload root is %d bytes but its tree covers %d blocks of %d", p.Root.RawSize, p.VerityBlocks, contract.VerityBlockSize)
	}
	want, err := verity.HashSize(p.Root.RawSize, verity.Params{})
	if err != nil {
		return nil, err
	}
	if p.Verity.RawSize != want {
		return nil, fmt.Errorf("payload verity tree is %d bytes, a tree of %d blocks is %d", p.Verity.RawSize, p.VerityBlocks, want)
	}
	if req.Root == "" || req.Verity == "" {
		return nil, errors.New("no payload file paths given")
	}
	return rootHash, nil
}

// sectorSize is the disk's logical sector size: the kernel's for a block device, 512 for an
// image file.
func sectorSize(f *os.File) (int, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Mode()&os.ModeDevice == 0 {
		return 512, nil
	}
	ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0, fmt.Errorf("logical sector size: BLKSSZGET: %w", err)
	}
	return ss, nil
}

// findSlot finds the slot's partitions by GPT label, each exactly once, and makes sure the disk is
// the running one: it holds the running root's PARTUUID, in another partition than those written.
func findSlot(tbl *gpt.Table, req Request) (slotParts, error) {
	var sp slotParts
	found := map[contract.PartitionName]int{}
	runningRoot := false
	for _, p := range tbl.Partitions() {
		switch contract.PartitionName(p.Name) {
		case req.Slot.Root():
			sp.root = p
		case req.Slot.Verity():
			sp.verity = p
		}
		found[contract.PartitionName(p.Name)]++
		if p.ID.UUID() == req.Running.Root {
			runningRoot = true
		}
	}
	for _, n := range []contract.PartitionName{req.Slot.Root(), req.Slot.Verity()} {
		if found[n] != 1 {
			return sp, fmt.Errorf("the GPT has %d partitions labelled %s, want 1", found[n], n)
		}
	}
	if !runningRoot {
		return sp, fmt.Errorf("no partition has the running root's PARTUUID %s: not the disk this host booted from", req.Running.Root)
	}
	for _, p := range []gpt.Partition{sp.root, sp.verity} {
		if u := p.ID.UUID(); u == req.Running.Root || u == req.Running.Verity {
			return sp, fmt.Errorf("partition %s has the running boot's PARTUUID %s", p.Name, u)
		}
	}
	return sp, nil
}

// checkUUIDs makes sure the new PARTUUIDs are not used by any other partition of the disk.
func checkUUIDs(tbl *gpt.Table, sp slotParts, root, ver contract.UUID) error {
	for _, p := range tbl.Partitions() {
		if p.Number == sp.root.Number || p.Number == sp.verity.Number {
			continue
		}
		if u := p.ID.UUID(); u == root || u == ver {
			return fmt.Errorf("partition %s already has PARTUUID %s, which the new root hash gives slot partitions", p.Name, u)
		}
	}
	return nil
}

func extent(p gpt.Partition, ss int) (off, size int64) {
	return int64(p.FirstLBA) * int64(ss), int64(p.Sectors()) * int64(ss)
}

// writePartition decompresses the payload file at path onto the disk at off, checking it against
// pf as it goes.
func writePartition(ctx context.Context, f *os.File, off int64, path string, pf contract.PayloadFile, progress func(int64)) error {
	r, err := Decompress(path, pf)
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, chunk)
	var pos int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := f.WriteAt(buf[:n], off+pos); err != nil {
				return err
			}
			pos += int64(n)
			progress(int64(n))
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return nil
		case rerr != nil:
			return rerr
		}
	}
}

// checkTree reads the verity superblock back, rebuilds the whole tree from the root as written
// and compares it with the tree as written, byte for byte, and the root hash with the payload's:
// what the kernel will check at every read then holds.
func checkTree(f *os.File, rootOff, verOff, verSize int64, p contract.Payload, rootHash []byte) error {
	sb := make([]byte, 512)
	if _, err := f.ReadAt(sb, verOff); err != nil {
		return fmt.Errorf("read verity superblock: %w", err)
	}
	params, err := parseSuperblock(sb, p)
	if err != nil {
		return err
	}
	cmp := &compareWriter{r: io.NewSectionReader(f, verOff, verSize)}
	res, err := verity.Build(io.NewSectionReader(f, rootOff, p.Root.RawSize), p.Root.RawSize, cmp, params)
	if err != nil {
		return fmt.Errorf("verity tree as written: %w", err)
	}
	if !bytes.Equal(res.RootHash, rootHash) {
		return fmt.Errorf("the root as written has root hash %x, the payload says %s", res.RootHash, p.RootHash)
	}
	if res.HashSize != p.Verity.RawSize {
		return fmt.Errorf("verity tree as written is %d bytes, the payload's is %d", res.HashSize, p.Verity.RawSize)
	}
	return nil
}

// parseSuperblock checks the dm-verity superblock (format 1, as images/verity and veritysetup
// write it) against the payload and returns the parameters that rebuild its tree.
func parseSuperblock(sb []byte, p contract.Payload) (verity.Params, error) {
	le := binary.LittleEndian
	if string(sb[0:8]) != "verity\x00\x00" {
		return verity.Params{}, errors.New("verity superblock as written: no verity signature")
	}
	if v, ht := le.Uint32(sb[8:]), le.Uint32(sb[12:]); v != 1 || ht != 1 {
		return verity.Params{}, fmt.Errorf("verity superblock as written: version %d hash type %d, want 1 and 1", v, ht)
	}
	if alg := string(bytes.TrimRight(sb[32:64], "\x00")); alg != "sha256" {
		return verity.Params{}, fmt.Errorf("verity superblock as written: algorithm %q, want sha256", alg)
	}
	dbs, hbs := le.Uint32(sb[64:]), le.Uint32(sb[68:])
	if dbs != contract.VerityBlockSize || hbs != contract.VerityBlockSize {
		return verity.Params{}, fmt.Errorf("verity superblock as written: block sizes %d/%d, want %d", dbs, hbs, contract.VerityBlockSize)
	}
	if n := le.Uint64(sb[72:]); n != p.VerityBlocks {
		return verity.Params{}, fmt.Errorf("verity superblock as written: %d data blocks, the payload says %d", n, p.VerityBlocks)
	}
	saltLen := int(le.Uint16(sb[80:]))
	if saltLen > verity.MaxSaltSize {
		return verity.Params{}, fmt.Errorf("verity superblock as written: salt of %d bytes", saltLen)
	}
	salt := sb[88 : 88+saltLen]
	if hex.EncodeToString(salt) != p.Salt {
		return verity.Params{}, fmt.Errorf("verity superblock as written: salt %x, the payload says %s", salt, p.Salt)
	}
	params := verity.Params{Salt: bytes.Clone(salt), DataBlockSize: contract.VerityBlockSize, HashBlockSize: contract.VerityBlockSize}
	copy(params.UUID[:], sb[16:32])
	return params, nil
}

// compareWriter is the hash device verity.Build writes to when checking: every write is compared
// with what the disk holds at that offset.
type compareWriter struct {
	r *io.SectionReader
}

func (c *compareWriter) WriteAt(p []byte, off int64) (int, error) {
	have := make([]byte, len(p))
	if _, err := c.r.ReadAt(have, off); err != nil {
		return 0, fmt.Errorf("read back %d bytes at %d: %w", len(p), off, err)
	}
	if !bytes.Equal(have, p) {
		i := 0
		for have[i] == p[i] {
			i++
		}
		return 0, fmt.Errorf("the tree as written differs from the one the root as written gives, at byte %d", off+int64(i))
	}
	return len(p), nil
}

// writeTable gives the slot's partitions their new PARTUUIDs in both GPT copies: the primary
// first and synced, then the backup. Each copy is written entries first, header last (gpt.Write),
// so at every moment at least one copy is whole, and the running slot's entries are the same in
// both.
func writeTable(f *os.File, tbl *gpt.Table, sp slotParts, root, ver contract.UUID) error {
	sp.root.ID, sp.verity.ID = gpt.FromUUID(root), gpt.FromUUID(ver)
	for _, p := range []gpt.Partition{sp.root, sp.verity} {
		if err := tbl.SetPartition(p); err != nil {
			return fmt.Errorf("GPT: %w", err)
		}
	}
	if err := tbl.Write(f); err != nil {
		return fmt.Errorf("primary GPT: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("primary GPT: %w", err)
	}
	if err := tbl.Backup().Write(f); err != nil {
		return fmt.Errorf("backup GPT: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup GPT: %w", err)
	}
	return nil
}
