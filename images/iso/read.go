package iso

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Reader limits: they bound what a damaged or hostile image can make the reader allocate or loop
// over.
const (
	maxDescriptors  = 64       // volume descriptors scanned for the PVD
	maxDirBytes     = 16 << 20 // one directory's extent
	maxContinuation = 32       // SUSP continuation areas per record (Linux allows as many)
	maxDepth        = 64       // path components
)

// Image is an opened ISO9660 volume.
type Image struct {
	r        io.ReaderAt
	volumeID string
	// blocks is the volume space size: every extent must lie below it.
	blocks int64
	root   extent
	// suspSkip is the SP entry's LEN_SKP: bytes before the SUSP entries of every record but the
	// root's ".". -1 when the volume has no SP entry, i.e. no SUSP (and so no Rock Ridge).
	suspSkip int
}

type extent struct {
	block int64 // first block of the data (after any extended attribute record)
	size  int64
}

// Open reads the primary volume descriptor and the root directory's first record.
func Open(r io.ReaderAt) (*Image, error) {
	im := &Image{r: r, suspSkip: -1}
	var pvd []byte
	for i := 0; i < maxDescriptors && pvd == nil; i++ {
		sector := int64(systemAreaBlocks + i)
		vd := make([]byte, blockSize)
		if err := readFull(r, vd, sector*blockSize); err != nil {
			return nil, fmt.Errorf("iso9660: read volume descriptor %d at offset %d: %w", sector, sector*blockSize, err)
		}
		if id := string(vd[1:6]); id != standardID {
			return nil, fmt.Errorf("iso9660: volume descriptor %d at offset %d: identifier %q, want %q (not an ISO9660 volume)", sector, sector*blockSize+1, id, standardID)
		}
		switch vd[0] {
		case vdPrimary:
			pvd = vd
		case vdTerminator:
			return nil, fmt.Errorf("iso9660: no primary volume descriptor before the terminator at sector %d", sector)
		}
	}
	if pvd == nil {
		return nil, fmt.Errorf("iso9660: no primary volume descriptor in sectors %d-%d", systemAreaBlocks, systemAreaBlocks+maxDescriptors-1)
	}
	if err := im.parsePVD(pvd); err != nil {
		return nil, err
	}
	if err := im.detectSUSP(); err != nil {
		return nil, err
	}
	return im, nil
}

func (im *Image) parsePVD(pvd []byte) error {
	if pvd[6] != 1 {
		return fmt.Errorf("iso9660: primary volume descriptor version %d, want 1", pvd[6])
	}
	if bs := binary.LittleEndian.Uint16(pvd[128:]); bs != blockSize {
		return fmt.Errorf("iso9660: primary volume descriptor: logical block size %d, only %d is supported", bs, blockSize)
	}
	im.volumeID = strings.TrimRight(string(pvd[40:72]), " \x00")
	im.blocks = int64(binary.LittleEndian.Uint32(pvd[80:]))
	rec, err := parseRecord(pvd[156:190])
	if err != nil {
		return fmt.Errorf("iso9660: primary volume descriptor: root directory record: %w", err)
	}
	if rec.flags&flagDirectory == 0 {
		return errors.New("iso9660: primary volume descriptor: root directory record lacks the directory flag")
	}
	im.root = rec.extent
	if err := im.checkExtent(rec.extent, "root directory"); err != nil {
		return err
	}
	return nil
}

// detectSUSP looks for the SP entry that must open the system use area of the root's "."
// record on a volume that uses SUSP (Rock Ridge included).
func (im *Image) detectSUSP() error {
	first := make([]byte, maxRecordLen)
	n := min(int64(len(first)), im.root.size)
	if err := readFull(im.r, first[:n], im.root.block*blockSize); err != nil {
		return fmt.Errorf("iso9660: read root directory at offset %d: %w", im.root.block*blockSize, err)
	}
	rec, err := parseRecord(first[:n])
	if err != nil {
		return fmt.Errorf("iso9660: root directory \".\" record at offset %d: %w", im.root.block*blockSize, err)
	}
	su := rec.systemUse
	if len(su) >= 7 && string(su[:2]) == "SP" && su[2] >= 7 && su[4] == 0xBE && su[5] == 0xEF {
		im.suspSkip = int(su[6])
	}
	return nil
}

// VolumeID is the PVD's volume identifier without its padding.
func (im *Image) VolumeID() string { return im.volumeID }

// Lookup finds a file by path and returns the offset and size of its single extent in the
// image. Components match a Rock Ridge name exactly; an entry without one matches its ISO9660
// identifier, without ";1" and a trailing ".", case-insensitively.
func (im *Image) Lookup(path string) (offset, size int64, err error) {
	parts, err := splitLookupPath(path)
	if err != nil {
		return 0, 0, err
	}
	dir := im.root
	for i, name := range parts {
		where := strings.Join(parts[:i], "/")
		if where == "" {
			where = "/"
		}
		ent, err := im.find(dir, name, where)
		if err != nil {
			return 0, 0, fmt.Errorf("iso9660: lookup %q: %w", path, err)
		}
		last := i == len(parts)-1
		isDir := ent.flags&flagDirectory != 0
		switch {
		case !last && !isDir:
			return 0, 0, fmt.Errorf("iso9660: lookup %q: %s is a file, not a directory", path, strings.Join(parts[:i+1], "/"))
		case last && isDir:
			return 0, 0, fmt.Errorf("iso9660: lookup %q: is a directory", path)
		case last && ent.flags&flagMultiExtent != 0:
			return 0, 0, fmt.Errorf("iso9660: lookup %q: the file spans several extents (only single-extent files are supported)", path)
		}
		dir = ent.extent
	}
	if err := im.checkExtent(dir, fmt.Sprintf("file %q", path)); err != nil {
		return 0, 0, err
	}
	return dir.block * blockSize, dir.size, nil
}

// ReadFile returns a file's content. A file larger than max bytes is an error; a negative max
// means no limit.
func (im *Image) ReadFile(path string, max int64) ([]byte, error) {
	off, size, err := im.Lookup(path)
	if err != nil {
		return nil, err
	}
	if max >= 0 && size > max {
		return nil, fmt.Errorf("iso9660: file %q is %d bytes, more than the %d allowed", path, size, max)
	}
	b := make([]byte, size)
	if err := readFull(im.r, b, off); err != nil {
		return nil, fmt.Errorf("iso9660: read file %q (%d bytes at offset %d): %w", path, size, off, err)
	}
	return b, nil
}

func splitLookupPath(path string) ([]string, error) {
	p := strings.Trim(path, "/")
	if p == "" {
		return nil, fmt.Errorf("iso9660: lookup %q: empty path", path)
	}
	parts := strings.Split(p, "/")
	if len(parts) > maxDepth {
		return nil, fmt.Errorf("iso9660: lookup %q: more than %d components", path, maxDepth)
	}
	for _, c := range parts {
		if c == "" || c == "." || c == ".." {
			return nil, fmt.Errorf("iso9660: lookup %q: invalid component %q", path, c)
		}
	}
	return parts, nil
}

func (im *Image) checkExtent(e extent, what string) error {
	end := e.block*blockSize + e.size
	if im.blocks > 0 && end > im.blocks*blockSize {
		return fmt.Errorf("iso9660: %s at block %d (%d bytes) ends at offset %d, past the volume's %d blocks", what, e.block, e.size, end, im.blocks)
	}
	return nil
}

// dirEntry is a directory record as Lookup needs it.
type dirEntry struct {
	isoName string // identifier without version and trailing "."
	rrName  string // Rock Ridge name, "" when none
	flags   byte
	extent  extent
	// hidden marks a directory Rock Ridge relocated (RE): it appears under its real parent
	// through a CL entry instead.
	hidden bool
}

func (e dirEntry) matches(name string) bool {
	if e.rrName != "" {
		return e.rrName == name
	}
	return strings.EqualFold(e.isoName, name)
}

// find returns the entry called name in the directory at d; where names the directory in errors.
func (im *Image) find(d extent, name, where string) (dirEntry, error) {
	if d.size > maxDirBytes {
		return dirEntry{}, fmt.Errorf("directory %s at block %d is %d bytes, more than the %d supported", where, d.block, d.size, maxDirBytes)
	}
	if err := im.checkExtent(d, "directory "+where); err != nil {
		return dirEntry{}, err
	}
	buf := make([]byte, d.size)
	base := d.block * blockSize
	if err := readFull(im.r, buf, base); err != nil {
		return dirEntry{}, fmt.Errorf("read directory %s (%d bytes at offset %d): %w", where, d.size, base, err)
	}
	for pos := 0; pos < len(buf); {
		n := int(buf[pos])
		if n == 0 { // the rest of this block is padding
			pos = (pos/blockSize + 1) * blockSize
			continue
		}
		if pos%blockSize+n > blockSize || pos+n > len(buf) {
			return dirEntry{}, fmt.Errorf("directory %s: record at offset %d (%d bytes) crosses a block boundary", where, base+int64(pos), n)
		}
		rec, err := parseRecord(buf[pos : pos+n])
		if err != nil {
			return dirEntry{}, fmt.Errorf("directory %s: record at offset %d: %w", where, base+int64(pos), err)
		}
		pos += n
		if rec.id == "\x00" || rec.id == "\x01" { // "." and ".."
			continue
		}
		ent, err := im.entry(rec)
		if err != nil {
			return dirEntry{}, fmt.Errorf("directory %s: record at offset %d: %w", where, base+int64(pos-n), err)
		}
		if !ent.hidden && ent.matches(name) {
			return ent, nil
		}
	}
	return dirEntry{}, fmt.Errorf("%q not found in directory %s: %w", name, where, fs.ErrNotExist)
}

// entry completes a record with what its Rock Ridge entries say.
func (im *Image) entry(rec record) (dirEntry, error) {
	ent := dirEntry{isoName: plainName(rec.id), flags: rec.flags, extent: rec.extent}
	if im.suspSkip < 0 || len(rec.systemUse) <= im.suspSkip {
		return ent, nil
	}
	var name strings.Builder
	err := im.walkSUSP(rec.systemUse[im.suspSkip:], func(sig string, e []byte) error {
		switch sig {
		case "NM":
			if len(e) < 5 || e[4]&0x06 != 0 { // flags: bit 1 current, bit 2 parent directory
				return nil
			}
			name.Write(e[5:])
		case "RE":
			ent.hidden = true
		case "CL":
			// A relocated directory: the record is a placeholder, the directory lives at the
			// child link; its own "." record gives its size.
			if len(e) < 12 {
				return fmt.Errorf("CL entry of %d bytes", len(e))
			}
			d, err := im.dotRecord(int64(binary.LittleEndian.Uint32(e[4:])))
			if err != nil {
				return err
			}
			ent.extent = d
			ent.flags |= flagDirectory
		}
		return nil
	})
	if err != nil {
		return dirEntry{}, fmt.Errorf("system use entries of %q: %w", rec.id, err)
	}
	ent.rrName = name.String()
	return ent, nil
}

// dotRecord reads the "." record of the directory at block and returns its extent.
func (im *Image) dotRecord(block int64) (extent, error) {
	b := make([]byte, maxRecordLen)
	if err := readFull(im.r, b, block*blockSize); err != nil {
		return extent{}, fmt.Errorf("read relocated directory at block %d: %w", block, err)
	}
	rec, err := parseRecord(b[:min(int(b[0]), len(b))])
	if err != nil {
		return extent{}, fmt.Errorf("relocated directory at block %d: %w", block, err)
	}
	return rec.extent, nil
}

// walkSUSP calls fn for each SUSP entry, following continuation areas (CE) and stopping at ST.
func (im *Image) walkSUSP(su []byte, fn func(sig string, entry []byte) error) error {
	for hops := 0; ; hops++ {
		var next *[3]int64
		for len(su) >= 4 {
			n := int(su[2])
			if n < 4 || n > len(su) {
				if su[0] == 0 { // padding at the end of a record
					break
				}
				return fmt.Errorf("SUSP entry %q has length %d with %d bytes left", su[:2], n, len(su))
			}
			e, sig := su[:n], string(su[:2])
			su = su[n:]
			switch sig {
			case "ST":
				su = nil
			case "CE":
				if n < 28 {
					return fmt.Errorf("CE entry of %d bytes", n)
				}
				le := binary.LittleEndian
				next = &[3]int64{int64(le.Uint32(e[4:])), int64(le.Uint32(e[12:])), int64(le.Uint32(e[20:]))}
			default:
				if err := fn(sig, e); err != nil {
					return err
				}
			}
		}
		if next == nil {
			return nil
		}
		if hops >= maxContinuation {
			return fmt.Errorf("more than %d continuation areas", maxContinuation)
		}
		block, off, size := next[0], next[1], next[2]
		if off+size > blockSize {
			return fmt.Errorf("continuation area at block %d offset %d length %d crosses a block boundary", block, off, size)
		}
		su = make([]byte, size)
		if err := readFull(im.r, su, block*blockSize+off); err != nil {
			return fmt.Errorf("read continuation area at offset %d: %w", block*blockSize+off, err)
		}
	}
}

// record is a parsed directory record.
type record struct {
	id        string
	flags     byte
	extent    extent
	systemUse []byte
}

func parseRecord(b []byte) (record, error) {
	if len(b) < dirRecordFixed+1 {
		return record{}, fmt.Errorf("directory record is too short (%d bytes available, at least %d needed)", len(b), dirRecordFixed+1)
	}
	if n := int(b[0]); n < dirRecordFixed+1 || n > len(b) {
		return record{}, fmt.Errorf("directory record length %d is outside %d..%d", n, dirRecordFixed+1, len(b))
	}
	b = b[:b[0]]
	idLen := int(b[32])
	if idLen == 0 || dirRecordFixed+idLen > len(b) {
		return record{}, fmt.Errorf("identifier length %d does not fit a record of %d bytes", idLen, len(b))
	}
	le := binary.LittleEndian
	rec := record{
		id:    string(b[33 : 33+idLen]),
		flags: b[25],
		extent: extent{
			block: int64(le.Uint32(b[2:])) + int64(b[1]), // data follows the extended attribute record
			size:  int64(le.Uint32(b[10:])),
		},
	}
	su := dirRecordFixed + idLen
	if idLen%2 == 0 {
		su++ // padding byte keeps the system use area at an even offset
	}
	if su < len(b) {
		rec.systemUse = b[su:]
	}
	return rec, nil
}

// plainName turns an ISO9660 identifier into the name Linux shows without Rock Ridge: no
// ";version", no trailing ".".
func plainName(id string) string {
	if i := strings.IndexByte(id, ';'); i >= 0 {
		id = id[:i]
	}
	return strings.TrimSuffix(id, ".")
}

// readFull reads len(b) bytes at off; a short read is io.ErrUnexpectedEOF ("image ends early").
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("image ends early (%d of %d bytes at offset %d): %w", n, len(b), off, io.ErrUnexpectedEOF)
	}
	return err
}
