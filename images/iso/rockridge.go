package iso

import "fmt"

// SUSP (IEEE P1281) and RRIP 1.10 (IEEE P1282, "RRIP_1991A") entries: what Linux's isofs,
// isoinfo and xorriso read back as names and modes.
const (
	erID         = "RRIP_1991A"
	erDescriptor = "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
	erSource     = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION."

	ceLen = 28
	// Modes of a read-only medium, as mkisofs -r records them.
	modeFile = 0o100444
	modeDir  = 0o040555
	// nmChunk is the most name bytes one NM entry carries (its length field is one byte).
	nmChunk = 250
)

func suspEntry(sig string, body ...byte) []byte {
	e := make([]byte, 4, 4+len(body))
	copy(e, sig)
	e[2] = byte(4 + len(body))
	e[3] = 1
	return append(e, body...)
}

func spEntry() []byte { return suspEntry("SP", 0xBE, 0xEF, 0) }

func pxEntry(mode, links uint32) []byte {
	b := make([]byte, 32)
	putBoth32(b[0:], mode)
	putBoth32(b[8:], links)
	// uid and gid stay 0: root, as on any medium the host mounts.
	return suspEntry("PX", b...)
}

// nmEntries splits a name over NM entries, all but the last flagged CONTINUE.
func nmEntries(name string) [][]byte {
	var es [][]byte
	for len(name) > nmChunk {
		es = append(es, suspEntry("NM", append([]byte{1}, name[:nmChunk]...)...))
		name = name[nmChunk:]
	}
	return append(es, suspEntry("NM", append([]byte{0}, name...)...))
}

func erEntry() []byte {
	body := []byte{byte(len(erID)), byte(len(erDescriptor)), byte(len(erSource)), 1}
	body = append(body, erID...)
	body = append(body, erDescriptor...)
	body = append(body, erSource...)
	return suspEntry("ER", body...)
}

func ceEntry(block, offset, length uint32) []byte {
	b := make([]byte, 24)
	putBoth32(b[0:], block)
	putBoth32(b[8:], offset)
	putBoth32(b[16:], length)
	return suspEntry("CE", b...)
}

// dirRecord is one record of a directory extent being planned.
type dirRecord struct {
	target *node  // whose extent, size and flags the record carries
	id     []byte // identifier: 0x00 for ".", 0x01 for "..", else the ISO9660 name
	inline []byte // system use entries stored in the record, a CE excepted
	cont   []byte // continuation area, nil when everything fits in the record
	// contBlock is the continuation area's block index among the continuation blocks and
	// contOffset its offset there; the CE entry is written once blocks are placed.
	contBlock, contOffset int
	pos                   int // offset in the directory extent
}

func (r *dirRecord) headerLen() int {
	n := dirRecordFixed + len(r.id)
	if len(r.id)%2 == 0 {
		n++
	}
	return n
}

func (r *dirRecord) length() int {
	n := r.headerLen() + len(r.inline)
	if r.cont != nil {
		n += ceLen
	}
	return n
}

// newRecord distributes entries between the record and, when they do not all fit, one
// continuation area. keep entries must stay in the record (SP must open the root's ".").
func newRecord(target *node, id []byte, keep [][]byte, rest [][]byte) (*dirRecord, error) {
	r := &dirRecord{target: target, id: id}
	for _, e := range keep {
		r.inline = append(r.inline, e...)
	}
	room := maxRecordLen - r.headerLen() - len(r.inline)
	total := 0
	for _, e := range rest {
		total += len(e)
	}
	if total <= room {
		for _, e := range rest {
			r.inline = append(r.inline, e...)
		}
		return r, nil
	}
	// Entries stay in the record while they fit beside the CE entry; from the first that does
	// not, the rest go to the continuation area, keeping their order.
	room -= ceLen
	var cont []byte
	for _, e := range rest {
		if len(cont) == 0 && len(e) <= room {
			r.inline = append(r.inline, e...)
			room -= len(e)
			continue
		}
		cont = append(cont, e...)
	}
	r.cont = cont
	if len(r.cont) > blockSize {
		return nil, fmt.Errorf("system use entries of %q need %d bytes, more than a block", target.path(), len(r.cont))
	}
	return r, nil
}

// planRecords lays out the records of directory d and asks alloc for their continuation areas.
func planRecords(d *node, alloc func(size int) (block, offset int)) error {
	px := func(n *node) []byte {
		if n.dir {
			return pxEntry(modeDir, uint32(2+n.subdirs()))
		}
		return pxEntry(modeFile, 1)
	}
	var recs []*dirRecord
	var dot *dirRecord
	var err error
	if d.parent == d {
		// The root's "." announces SUSP (SP, first) and Rock Ridge (ER, which is long enough to
		// live in the continuation area).
		dot, err = newRecord(d, []byte{0}, [][]byte{spEntry(), px(d)}, [][]byte{erEntry()})
	} else {
		dot, err = newRecord(d, []byte{0}, nil, [][]byte{px(d)})
	}
	if err != nil {
		return err
	}
	dotdot, err := newRecord(d.parent, []byte{1}, nil, [][]byte{px(d.parent)})
	if err != nil {
		return err
	}
	recs = append(recs, dot, dotdot)
	for _, c := range d.children {
		r, err := newRecord(c, []byte(c.id.String()), nil, append([][]byte{px(c)}, nmEntries(c.name)...))
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	pos := 0
	for _, r := range recs {
		if r.cont != nil {
			r.contBlock, r.contOffset = alloc(len(r.cont))
		}
		if pos%blockSize+r.length() > blockSize { // records never cross a block boundary
			pos += blockSize - pos%blockSize
		}
		r.pos = pos
		pos += r.length()
	}
	d.dirRecs = recs
	d.dirSize = blocksFor(int64(pos)) * blockSize
	return nil
}

// marshal writes the record into b (at least r.length() bytes).
func (r *dirRecord) marshal(b []byte, date [7]byte, zeroBlock uint32, contBase uint32) {
	n := r.length()
	b[0] = byte(n)
	t := r.target
	block, size, flags := t.block, uint32(t.size), byte(0)
	switch {
	case t.dir:
		size, flags = uint32(t.dirSize), flagDirectory
	case t.size == 0:
		block = zeroBlock
	}
	putBoth32(b[2:], block)
	putBoth32(b[10:], size)
	copy(b[18:25], date[:])
	b[25] = flags
	putBoth16(b[28:], 1) // volume sequence number
	b[32] = byte(len(r.id))
	copy(b[33:], r.id)
	p := r.headerLen()
	p += copy(b[p:], r.inline)
	if r.cont != nil {
		copy(b[p:], ceEntry(contBase+uint32(r.contBlock), uint32(r.contOffset), uint32(len(r.cont))))
	}
}
