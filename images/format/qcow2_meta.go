package format

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

const (
	qcowVersion      = 3
	qcowHeaderLength = 104 // the version 3 header without optional fields
	qcowRefOrder     = 4   // 16-bit refcounts
	qcowRefsPerBlock = qcowClusterSize * 8 / (1 << qcowRefOrder)
)

// qcowLayout places the metadata after the data clusters.
type qcowLayout struct {
	l1Size       int64 // L1 entries: one per 512 MiB of virtual disk
	l2Indexes    []int // L1 indexes with an L2 table, ascending
	l2Off        int64 // first L2 table; the others follow in order
	l1Off        int64 // L1 table
	l1Clusters   int64 // clusters the L1 table spans
	refBlockOff  int64 // first refcount block; the others follow
	refBlocks    int64 // refcount blocks
	refTableOff  int64 // refcount table
	refTableClus int64 // clusters the refcount table spans
	clusters     int64 // host clusters in the whole file
}

// planQCOW lays out the metadata for an image whose data ends at dataEnd
// (cluster aligned). The refcount structures count themselves, so their
// size is found by iterating to a fixed point; it settles in a step or two
// because each refcount block covers 2 GiB.
func planQCOW(size, dataEnd int64, l2Indexes []int) qcowLayout {
	l := qcowLayout{l2Indexes: l2Indexes}
	guestClusters := (size + qcowClusterSize - 1) / qcowClusterSize
	l.l1Size = (guestClusters + qcowL2Entries - 1) / qcowL2Entries
	l.l2Off = dataEnd
	l.l1Off = l.l2Off + int64(len(l2Indexes))*qcowClusterSize
	l.l1Clusters = max((l.l1Size*8+qcowClusterSize-1)/qcowClusterSize, 1)
	l.refBlockOff = l.l1Off + l.l1Clusters*qcowClusterSize
	before := l.refBlockOff / qcowClusterSize
	l.refBlocks, l.refTableClus = 1, 1
	for {
		total := before + l.refBlocks + l.refTableClus
		blocks := (total + qcowRefsPerBlock - 1) / qcowRefsPerBlock
		table := max((blocks*8+qcowClusterSize-1)/qcowClusterSize, 1)
		if blocks <= l.refBlocks && table <= l.refTableClus {
			l.clusters = total
			break
		}
		l.refBlocks, l.refTableClus = max(blocks, l.refBlocks), max(table, l.refTableClus)
	}
	l.refTableOff = l.refBlockOff + l.refBlocks*qcowClusterSize
	return l
}

// finish writes the metadata and, last of all, the header, so an image cut
// short by a crash never carries a valid magic.
func (img *qcowImage) finish() error {
	dataEnd := alignUp(img.pos, qcowClusterSize)
	l := planQCOW(img.size, dataEnd, slices.Sorted(maps.Keys(img.l2)))

	refs := make([]uint16, l.clusters)
	copy(refs, img.refs)
	for c := dataEnd / qcowClusterSize; c < l.clusters; c++ {
		refs[c] = 1 // every metadata cluster is referenced exactly once
	}

	l1 := make([]byte, l.l1Clusters*qcowClusterSize)
	table := make([]byte, qcowClusterSize)
	for i, idx := range l.l2Indexes {
		off := l.l2Off + int64(i)*qcowClusterSize
		for j, e := range img.l2[idx] {
			binary.BigEndian.PutUint64(table[j*8:], e)
		}
		if _, err := img.out.WriteAt(table, off); err != nil {
			return fmt.Errorf("write L2 table: %w", err)
		}
		binary.BigEndian.PutUint64(l1[idx*8:], uint64(off)|qcowCopied)
	}
	if _, err := img.out.WriteAt(l1, l.l1Off); err != nil {
		return fmt.Errorf("write L1 table: %w", err)
	}

	blocks := make([]byte, l.refBlocks*qcowClusterSize)
	for c, r := range refs {
		binary.BigEndian.PutUint16(blocks[c*2:], r)
	}
	if _, err := img.out.WriteAt(blocks, l.refBlockOff); err != nil {
		return fmt.Errorf("write refcount blocks: %w", err)
	}
	reftable := make([]byte, l.refTableClus*qcowClusterSize)
	for i := range l.refBlocks {
		binary.BigEndian.PutUint64(reftable[i*8:], uint64(l.refBlockOff+i*qcowClusterSize))
	}
	if _, err := img.out.WriteAt(reftable, l.refTableOff); err != nil {
		return fmt.Errorf("write refcount table: %w", err)
	}
	if err := img.out.Truncate(l.clusters * qcowClusterSize); err != nil {
		return err
	}
	if _, err := img.out.WriteAt(qcowHeader(img.size, l), 0); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	return nil
}

// qcowHeader returns the version 3 header, followed by the end-of-extensions
// marker (eight zero bytes, already zero in the slice).
func qcowHeader(size int64, l qcowLayout) []byte {
	h := make([]byte, qcowHeaderLength+8)
	copy(h[0:4], "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(h[4:], qcowVersion)
	// 8: backing file offset, 16: its length — none.
	be.PutUint32(h[20:], qcowClusterBits)
	be.PutUint64(h[24:], uint64(size))
	// 32: encryption method — none.
	be.PutUint32(h[36:], uint32(l.l1Size))
	be.PutUint64(h[40:], uint64(l.l1Off))
	be.PutUint64(h[48:], uint64(l.refTableOff))
	be.PutUint32(h[56:], uint32(l.refTableClus))
	// 60: snapshots, 64: their offset; 72, 80, 88: incompatible,
	// compatible and autoclear feature bits — all zero: a clean image
	// that any version 3 reader understands.
	be.PutUint32(h[96:], qcowRefOrder)
	be.PutUint32(h[100:], qcowHeaderLength)
	return h
}
