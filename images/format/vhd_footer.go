package format

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Fields of the VHD footer, from Microsoft's "Virtual Hard Disk Image Format
// Specification". All numbers are big-endian.
const (
	vhdFooterSize  = 512
	vhdFeatures    = 0x00000002 // the "reserved" bit, which must always be set
	vhdVersion     = 0x00010000
	vhdFixedOffset = ^uint64(0) // a fixed disk has no dynamic header
	vhdCreatorVer  = 0x00010000
	vhdDiskFixed   = 2
	vhdMaxCHSSecs  = 65535 * 16 * 255
	// QEMU trusts the footer's size only from creators it knows to write
	// it exactly ("win ", "qem2", "d2v ", "CTXS", "tap\0"); for any other,
	// ours included, it takes the CHS size unless opened with
	// force_size_calc=current_size. Azure reads the footer's size. Rather
	// than pose as another creator, Ballast sizes its disks so that both
	// agree (ExactVHDSize).
	vhdCreatorApp  = "blst"
	vhdCreatorHost = "Wi2k"
	vhdEpochUnix   = 946684800 // 2000-01-01T00:00:00Z, the zero of the footer's time stamp
)

// vhdFooter returns the footer of a fixed disk of size bytes.
func vhdFooter(size int64, opts Options) ([]byte, error) {
	stamp, err := vhdTimestamp(opts.Time)
	if err != nil {
		return nil, err
	}
	cyl, heads, spt := vhdGeometry(size / sectorSize)
	b := make([]byte, vhdFooterSize)
	copy(b[0:8], "conectix")
	binary.BigEndian.PutUint32(b[8:], vhdFeatures)
	binary.BigEndian.PutUint32(b[12:], vhdVersion)
	binary.BigEndian.PutUint64(b[16:], vhdFixedOffset)
	binary.BigEndian.PutUint32(b[24:], stamp)
	copy(b[28:32], vhdCreatorApp)
	binary.BigEndian.PutUint32(b[32:], vhdCreatorVer)
	// The specification only knows Windows and Macintosh hosts; "Wi2k" is
	// what every non-Mac writer uses.
	copy(b[36:40], vhdCreatorHost)
	binary.BigEndian.PutUint64(b[40:], uint64(size)) // original size
	binary.BigEndian.PutUint64(b[48:], uint64(size)) // current size
	binary.BigEndian.PutUint16(b[56:], cyl)
	b[58] = heads
	b[59] = spt
	binary.BigEndian.PutUint32(b[60:], vhdDiskFixed)
	copy(b[68:84], opts.UUID[:])
	binary.BigEndian.PutUint32(b[64:], vhdChecksum(b))
	return b, nil
}

// vhdTimestamp counts seconds since 2000-01-01 UTC in 32 bits; the zero time
// maps to 0 so a caller that does not care still gets a fixed value.
func vhdTimestamp(t time.Time) (uint32, error) {
	if t.IsZero() {
		return 0, nil
	}
	secs := t.Unix() - vhdEpochUnix
	if secs < 0 || secs > int64(^uint32(0)) {
		return 0, fmt.Errorf("time %s cannot be stored in a VHD footer (2000 to 2136 only)", t.UTC().Format(time.RFC3339))
	}
	return uint32(secs), nil
}

// vhdChecksum is the ones' complement of the byte sum of the footer with
// its checksum field taken as zero.
func vhdChecksum(footer []byte) uint32 {
	var sum uint32
	for i, c := range footer {
		if i >= 64 && i < 68 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// vhdGeometry computes the CHS geometry the specification prescribes for a
// disk of the given number of sectors. It is a lossy description: the
// product of the three is at most the real size, and disks beyond about
// 127 GiB all get the largest geometry.
func vhdGeometry(sectors int64) (cylinders uint16, heads, sectorsPerTrack uint8) {
	sectors = min(sectors, vhdMaxCHSSecs)
	var spt, h, cth int64
	if sectors >= 65535*16*63 {
		spt, h = 255, 16
		cth = sectors / spt
	} else {
		// Prefer the classic 17-sector track, then 31, then 63, taking
		// the first that keeps cylinders below 1024 per head.
		spt = 17
		cth = sectors / spt
		h = max((cth+1023)/1024, 4)
		if cth >= h*1024 || h > 16 {
			spt, h = 31, 16
			cth = sectors / spt
		}
		if cth >= h*1024 {
			spt, h = 63, 16
			cth = sectors / spt
		}
	}
	return uint16(cth / h), uint8(h), uint8(spt)
}
