package format

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// streamOptimized geometry: 64 KiB grains, 512 entries per grain table, so
// each grain table covers 32 MiB of the disk.
const (
	vmdkGrainSectors = 128
	vmdkGrainSize    = vmdkGrainSectors * sectorSize
	vmdkGTEntries    = 512
	vmdkGTSectors    = vmdkGTEntries * 4 / sectorSize
	// vmdkOverhead is where the first grain goes: after the header and the
	// descriptor area, padded so grains start grain-aligned.
	vmdkOverhead = vmdkGrainSectors
)

// vmdkStream writes a streamOptimized extent front to back: header,
// descriptor, then each non-zero grain behind its marker, each grain table
// after the grains it maps, and at the end the grain directory, the footer
// and the end-of-stream marker. A reader can consume it from a pipe.
type vmdkStream struct {
	w       *bufio.Writer
	off     int64 // bytes written so far
	zip     *deflater
	gd      []uint32 // sector of each grain table, 0 for one never written
	gt      []uint32 // entries of the grain table being filled
	gtIndex int      // which grain table gt is
	gtUsed  bool     // whether gt maps any grain
	grains  int64    // grains written
}

func writeVMDK(ctx context.Context, in *input, out outFile, name string, opts Options) error {
	_, err := streamVMDK(ctx, in, out, name, opts)
	return err
}

// streamVMDK writes the extent to out and returns how many of its grains
// hold data.
func streamVMDK(ctx context.Context, in *input, out io.Writer, name string, opts Options) (int64, error) {
	desc, err := vmdkDescriptor(in.size, name, opts.UUID)
	if err != nil {
		return 0, fmt.Errorf("vmdk: %w", err)
	}
	zip, err := newVMDKDeflater()
	if err != nil {
		return 0, fmt.Errorf("vmdk: %w", err)
	}
	capacity := in.size / sectorSize
	allGrains := (capacity + vmdkGrainSectors - 1) / vmdkGrainSectors
	s := &vmdkStream{
		w:   bufio.NewWriterSize(out, 1<<20),
		zip: zip,
		gd:  make([]uint32, (allGrains+vmdkGTEntries-1)/vmdkGTEntries),
		gt:  make([]uint32, vmdkGTEntries),
	}
	h := vmdkHeader{capacity: uint64(capacity), gdOffset: vmdkGDAtEnd}
	if err := s.write(h.bytes()); err != nil {
		return 0, fmt.Errorf("vmdk: %w", err)
	}
	if err := s.write(desc); err != nil {
		return 0, fmt.Errorf("vmdk: %w", err)
	}
	if err := s.padTo(vmdkOverhead); err != nil {
		return 0, fmt.Errorf("vmdk: %w", err)
	}

	full := make([]byte, vmdkGrainSize)
	err = walk(ctx, in, vmdkGrainSize, func(off int64, b []byte) error {
		if b == nil {
			return nil
		}
		if len(b) < vmdkGrainSize {
			// Readers inflate every grain to its full size.
			clear(full)
			copy(full, b)
			b = full
		}
		if err := s.grain(off/vmdkGrainSize, b); err != nil {
			return fmt.Errorf("vmdk: grain at offset %d: %w", off, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.finish(h); err != nil {
		return 0, fmt.Errorf("vmdk: %w", err)
	}
	return s.grains, nil
}

// grain writes grain n (counted from the start of the disk).
func (s *vmdkStream) grain(n int64, b []byte) error {
	if t := int(n / vmdkGTEntries); t != s.gtIndex {
		if err := s.flushGT(); err != nil {
			return err
		}
		s.gtIndex = t
	}
	c, err := s.zip.compress(b)
	if err != nil {
		return err
	}
	at, err := s.sector()
	if err != nil {
		return err
	}
	s.gt[n%vmdkGTEntries] = at
	s.gtUsed = true
	s.grains++
	var m [12]byte
	binary.LittleEndian.PutUint64(m[0:], uint64(n*vmdkGrainSectors))
	binary.LittleEndian.PutUint32(m[8:], uint32(len(c)))
	if err := s.write(m[:]); err != nil {
		return err
	}
	if err := s.write(c); err != nil {
		return err
	}
	return s.padSector()
}

// flushGT writes the grain table being filled, unless it maps nothing: a
// zero directory entry already says the whole 32 MiB reads as zero.
func (s *vmdkStream) flushGT() error {
	if !s.gtUsed {
		return nil
	}
	if err := s.marker(vmdkGTSectors, vmdkMarkerGT); err != nil {
		return err
	}
	at, err := s.sector()
	if err != nil {
		return err
	}
	s.gd[s.gtIndex] = at
	if err := s.writeTable(s.gt); err != nil {
		return err
	}
	clear(s.gt)
	s.gtUsed = false
	return nil
}

// finish writes the last grain table, the grain directory, the footer (the
// header again, now knowing where the directory is) and end-of-stream.
func (s *vmdkStream) finish(h vmdkHeader) error {
	if err := s.flushGT(); err != nil {
		return err
	}
	gdSectors := (int64(len(s.gd))*4 + sectorSize - 1) / sectorSize
	if err := s.marker(uint64(gdSectors), vmdkMarkerGD); err != nil {
		return err
	}
	at, err := s.sector()
	if err != nil {
		return err
	}
	h.gdOffset = uint64(at)
	if err := s.writeTable(s.gd); err != nil {
		return err
	}
	if err := s.marker(1, vmdkMarkerFooter); err != nil {
		return err
	}
	if err := s.write(h.bytes()); err != nil {
		return err
	}
	if err := s.marker(0, vmdkMarkerEOS); err != nil {
		return err
	}
	return s.w.Flush()
}

// marker writes a metadata marker: a sector holding the number of sectors
// of metadata that follow, a zero size (which tells it from a grain) and
// its type.
func (s *vmdkStream) marker(val uint64, typ uint32) error {
	var m [sectorSize]byte
	binary.LittleEndian.PutUint64(m[0:], val)
	binary.LittleEndian.PutUint32(m[12:], typ)
	return s.write(m[:])
}

// writeTable writes little-endian 32-bit entries padded to whole sectors.
func (s *vmdkStream) writeTable(entries []uint32) error {
	b := make([]byte, len(entries)*4)
	for i, e := range entries {
		binary.LittleEndian.PutUint32(b[i*4:], e)
	}
	if err := s.write(b); err != nil {
		return err
	}
	return s.padSector()
}

// write appends b to the stream.
func (s *vmdkStream) write(b []byte) error {
	n, err := s.w.Write(b)
	s.off += int64(n)
	return err
}

// padSector pads the stream with zeros to the next sector boundary.
func (s *vmdkStream) padSector() error {
	return s.padTo((s.off + sectorSize - 1) / sectorSize)
}

// padTo pads the stream with zeros up to the given sector.
func (s *vmdkStream) padTo(sector int64) error {
	var zero [sectorSize]byte
	for s.off < sector*sectorSize {
		n := min(sector*sectorSize-s.off, sectorSize)
		if err := s.write(zero[:n]); err != nil {
			return err
		}
	}
	return nil
}

// sector is the sector the next write starts at; everything that a table
// points to starts on a sector boundary. Tables hold 32-bit sector numbers,
// which caps an extent at 2 TiB.
func (s *vmdkStream) sector() (uint32, error) {
	n := s.off / sectorSize
	if n > math.MaxUint32 {
		return 0, fmt.Errorf("extent passes 2 TiB, beyond what its 32-bit grain tables can address")
	}
	return uint32(n), nil
}
