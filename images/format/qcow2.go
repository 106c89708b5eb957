package format

import (
	"context"
	"fmt"
)

// QCOW2 geometry: 64 KiB clusters (qemu's default) and 16-bit refcounts.
const (
	qcowClusterBits = 16
	qcowClusterSize = 1 << qcowClusterBits
	qcowL2Entries   = qcowClusterSize / 8
)

// L2 entry bits (QEMU's docs/interop/qcow2.txt).
const (
	qcowCopied     = 1 << 63 // refcount is exactly 1, so writes may go in place
	qcowCompressed = 1 << 62
	// A compressed cluster's descriptor keeps its byte offset in the low
	// 62-(cluster_bits-8) bits and, above them, the count of 512-byte
	// sectors it spans beyond the first.
	qcowCSizeShift = 62 - (qcowClusterBits - 8)
)

// qcowImage collects where each guest cluster went while the data is being
// written; the metadata describing it is written after the data, once the
// number of data clusters is known.
type qcowImage struct {
	out  outFile
	size int64 // virtual size
	// l2 holds the L2 tables that have at least one allocated cluster,
	// by L1 index; empty tables are never materialised.
	l2 map[int][]uint64
	// refs counts references to each host cluster written so far,
	// starting with the header cluster. A compressed cluster takes at
	// least a few dozen bytes, so no host cluster is shared by more than
	// a few thousand: 16 bits are plenty.
	refs []uint16
	// pos is the next free byte: compressed clusters are packed byte by
	// byte, uncompressed ones start on the next cluster boundary.
	pos int64
	zip *deflater
}

// writeQCOW2 writes a QCOW2 version 3 image: the header cluster, the
// non-zero clusters in guest order, then L2 tables, L1 table, refcount
// blocks and refcount table.
func writeQCOW2(ctx context.Context, in *input, out outFile, _ string, opts Options) error {
	img := &qcowImage{
		out:  out,
		size: in.size,
		l2:   map[int][]uint64{},
		refs: []uint16{1},
		pos:  qcowClusterSize,
	}
	if opts.Compress {
		d, err := newQCOWDeflater()
		if err != nil {
			return fmt.Errorf("qcow2: %w", err)
		}
		img.zip = d
	}
	full := make([]byte, qcowClusterSize)
	err := walk(ctx, in, qcowClusterSize, func(off int64, b []byte) error {
		if b == nil {
			return nil
		}
		if len(b) < qcowClusterSize {
			// The last cluster of a disk that is not a whole number of
			// clusters: pad, since a cluster is always read whole.
			clear(full)
			copy(full, b)
			b = full
		}
		if err := img.writeCluster(off/qcowClusterSize, b); err != nil {
			return fmt.Errorf("qcow2: cluster at offset %d: %w", off, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := img.finish(); err != nil {
		return fmt.Errorf("qcow2: %w", err)
	}
	return nil
}

// writeCluster stores guest cluster n, compressed if that is asked for and
// makes it smaller.
func (img *qcowImage) writeCluster(n int64, b []byte) error {
	var entry uint64
	if img.zip != nil {
		c, err := img.zip.compress(b)
		if err != nil {
			return err
		}
		if len(c) < qcowClusterSize {
			e, err := img.appendCompressed(c)
			if err != nil {
				return err
			}
			entry = e
		}
	}
	if entry == 0 {
		off := alignUp(img.pos, qcowClusterSize)
		if _, err := img.out.WriteAt(b, off); err != nil {
			return err
		}
		img.ref(off, off+qcowClusterSize)
		img.pos = off + qcowClusterSize
		entry = uint64(off) | qcowCopied
	}
	l1, i := int(n/qcowL2Entries), n%qcowL2Entries
	t := img.l2[l1]
	if t == nil {
		t = make([]uint64, qcowL2Entries)
		img.l2[l1] = t
	}
	t[i] = entry
	return nil
}

// appendCompressed packs compressed data right after the previous one and
// returns its L2 descriptor. Readers fetch whole sectors, so every host
// cluster that one of its sectors touches counts a reference.
func (img *qcowImage) appendCompressed(c []byte) (uint64, error) {
	off := img.pos
	if _, err := img.out.WriteAt(c, off); err != nil {
		return 0, err
	}
	// Less than a cluster of data spans at most 129 sectors; the field
	// holds up to 255.
	last := (off + int64(len(c)) - 1) / sectorSize
	extra := last - off/sectorSize
	img.ref(off, (last+1)*sectorSize)
	img.pos = off + int64(len(c))
	return qcowCompressed | uint64(extra)<<qcowCSizeShift | uint64(off), nil
}

// ref counts one reference to every host cluster in [start, end).
func (img *qcowImage) ref(start, end int64) {
	for c := start / qcowClusterSize; c <= (end-1)/qcowClusterSize; c++ {
		for int64(len(img.refs)) <= c {
			img.refs = append(img.refs, 0)
		}
		img.refs[c]++
	}
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
