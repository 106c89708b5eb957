package iso

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// layout is where everything goes, in blocks.
type layout struct {
	root       *node
	dirs       []*node // path table order
	files      []*node // data order
	bootRecord uint32  // 0 without EFIBoot
	terminator uint32
	pathTable  int64 // bytes of one path table
	lPath      uint32
	mPath      uint32
	catalog    uint32
	contBase   uint32
	contBlocks int
	zeroBlock  uint32 // the block empty files point at; 0 when there is none
	efiBlock   uint32
	dataEnd    uint32 // first block after the last file
	total      uint32 // volume space size
}

// Write writes the image to w from offset 0 and returns its size in bytes (a multiple of 2048,
// and of 512 for the GPT). Files are stored contiguously, each in one extent. Every byte of the
// image is written, padding included, so the output does not depend on what w held before; a
// reused file longer than the image is for the caller to truncate to the size returned.
func Write(w io.WriterAt, opts Options, files []File) (int64, error) {
	if err := checkOptions(&opts); err != nil {
		return 0, err
	}
	root, err := buildTree(files)
	if err != nil {
		return 0, fmt.Errorf("iso9660: %w", err)
	}
	l, err := plan(root, opts)
	if err != nil {
		return 0, fmt.Errorf("iso9660: %w", err)
	}
	o := &output{w: w}
	if opts.EFIBoot != nil && opts.DiskGUID == ([16]byte{}) {
		o.hash = sha256.New()
	}
	if err := l.write(o, opts); err != nil {
		return 0, fmt.Errorf("iso9660: %w", err)
	}
	if opts.EFIBoot != nil {
		if err := l.writeGPT(w, opts, o.hash); err != nil {
			return 0, fmt.Errorf("iso9660: %w", err)
		}
	}
	return int64(l.total) * blockSize, nil
}

func checkOptions(opts *Options) error {
	if len(opts.VolumeID) > 32 {
		return fmt.Errorf("iso9660: volume ID %q is %d bytes, more than 32", opts.VolumeID, len(opts.VolumeID))
	}
	for i := 0; i < len(opts.VolumeID); i++ {
		if c := opts.VolumeID[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("iso9660: volume ID %q: byte %#02x at %d is not printable ASCII", opts.VolumeID, c, i)
		}
	}
	opts.Time = opts.Time.UTC()
	if y := opts.Time.Year(); y < 1900 || y > 2155 {
		return fmt.Errorf("iso9660: time %s is outside the years 1900-2155 a directory record holds", opts.Time.Format(time.RFC3339))
	}
	if n := len(opts.EFIBoot); opts.EFIBoot != nil && (n == 0 || n%512 != 0 || n > maxFileSize) {
		return fmt.Errorf("iso9660: EFI boot image of %d bytes: want a non-empty multiple of 512 bytes below 4 GiB (it becomes a GPT partition)", n)
	}
	return nil
}

func plan(root *node, opts Options) (*layout, error) {
	l := &layout{root: root, dirs: directories(root)}
	if len(l.dirs) > 0xFFFF {
		return nil, fmt.Errorf("%d directories: more than the path table's 16-bit parent numbers reach", len(l.dirs))
	}
	var contUsed []int // bytes used in each continuation block
	alloc := func(size int) (int, int) {
		last := len(contUsed) - 1
		if last < 0 || contUsed[last]+size > blockSize {
			contUsed = append(contUsed, 0)
			last++
		}
		off := contUsed[last]
		contUsed[last] += size
		return last, off
	}
	for _, d := range l.dirs {
		if err := planRecords(d, alloc); err != nil {
			return nil, err
		}
		l.pathTable += int64(pathTableRecordLen(d))
	}
	l.contBlocks = len(contUsed)

	next := int64(systemAreaBlocks + 1) // after the PVD
	take := func(blocks int64) uint32 {
		b := uint32(next)
		next += blocks
		return b
	}
	if opts.EFIBoot != nil {
		l.bootRecord = take(1)
	}
	l.terminator = take(1)
	l.lPath = take(blocksFor(l.pathTable))
	l.mPath = take(blocksFor(l.pathTable))
	if opts.EFIBoot != nil {
		l.catalog = take(1)
	}
	l.contBase = take(int64(l.contBlocks))
	for _, d := range l.dirs {
		d.block = take(d.dirSize / blockSize)
	}
	walkFiles(root, func(n *node) { l.files = append(l.files, n) })
	for _, f := range l.files {
		if f.size == 0 && l.zeroBlock == 0 {
			l.zeroBlock = take(1)
		}
	}
	if opts.EFIBoot != nil {
		l.efiBlock = take(blocksFor(int64(len(opts.EFIBoot))))
	}
	for _, f := range l.files {
		if f.size > 0 {
			f.block = take(blocksFor(f.size))
		}
		if next > maxFileSize {
			return nil, fmt.Errorf("%d blocks: more than a 32-bit block address reaches", next)
		}
	}
	l.dataEnd = uint32(next)
	if opts.EFIBoot != nil {
		take(blocksFor(gptTailBytes))
	}
	if next > maxFileSize {
		return nil, fmt.Errorf("%d blocks: more than a 32-bit block address reaches", next)
	}
	l.total = uint32(next)
	return l, nil
}

// output writes blocks in order, hashing them when the GPT's GUIDs come from the content.
type output struct {
	w    io.WriterAt
	hash hash.Hash
}

func (o *output) at(b []byte, block uint32, what string) error {
	off := int64(block) * blockSize
	if _, err := o.w.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s at offset %d: %w", what, off, err)
	}
	if o.hash != nil {
		o.hash.Write(b)
	}
	return nil
}

func (l *layout) write(o *output, opts Options) error {
	// The system area: zeros, or for a hybrid image the place of the MBR and primary GPT, which
	// are written last (their GUIDs may depend on everything else). Not hashed, like the tail.
	if _, err := o.w.WriteAt(make([]byte, systemAreaBlocks*blockSize), 0); err != nil {
		return fmt.Errorf("write system area: %w", err)
	}
	date := recordDate(opts.Time)
	if err := o.at(l.pvd(opts), systemAreaBlocks, "primary volume descriptor"); err != nil {
		return err
	}
	if opts.EFIBoot != nil {
		if err := o.at(bootRecord(l.catalog), l.bootRecord, "El Torito boot record"); err != nil {
			return err
		}
	}
	term := make([]byte, blockSize)
	term[0] = vdTerminator
	copy(term[1:], standardID)
	term[6] = 1
	if err := o.at(term, l.terminator, "volume descriptor set terminator"); err != nil {
		return err
	}
	if err := o.at(l.pathTableBytes(binary.LittleEndian), l.lPath, "L path table"); err != nil {
		return err
	}
	if err := o.at(l.pathTableBytes(binary.BigEndian), l.mPath, "M path table"); err != nil {
		return err
	}
	if opts.EFIBoot != nil {
		if err := o.at(bootCatalog(l.efiBlock, len(opts.EFIBoot)), l.catalog, "El Torito boot catalog"); err != nil {
			return err
		}
	}
	cont := make([]byte, l.contBlocks*blockSize)
	for _, d := range l.dirs {
		for _, r := range d.dirRecs {
			if r.cont != nil {
				copy(cont[r.contBlock*blockSize+r.contOffset:], r.cont)
			}
		}
	}
	if err := o.at(cont, l.contBase, "continuation areas"); err != nil {
		return err
	}
	for _, d := range l.dirs {
		b := make([]byte, d.dirSize)
		for _, r := range d.dirRecs {
			r.marshal(b[r.pos:], date, l.zeroBlock, l.contBase)
		}
		if err := o.at(b, d.block, fmt.Sprintf("directory %q", "/"+d.path())); err != nil {
			return err
		}
	}
	if l.zeroBlock != 0 {
		if err := o.at(make([]byte, blockSize), l.zeroBlock, "empty files' block"); err != nil {
			return err
		}
	}
	if opts.EFIBoot != nil {
		if err := o.data(opts.EFIBoot, l.efiBlock, "EFI boot image"); err != nil {
			return err
		}
	}
	buf := make([]byte, 0, 1<<20)
	for _, f := range l.files {
		if f.size == 0 {
			continue
		}
		if err := o.file(f, buf[:cap(buf)]); err != nil {
			return err
		}
	}
	if opts.EFIBoot != nil {
		tail := make([]byte, int64(l.total-l.dataEnd)*blockSize)
		if _, err := o.w.WriteAt(tail, int64(l.dataEnd)*blockSize); err != nil {
			return fmt.Errorf("write backup GPT area: %w", err)
		}
	}
	return nil
}

// data writes b and zeros up to the end of its last block.
func (o *output) data(b []byte, block uint32, what string) error {
	full := len(b) - len(b)%blockSize
	if err := o.at(b[:full], block, what); err != nil {
		return err
	}
	if full == len(b) {
		return nil
	}
	last := make([]byte, blockSize)
	copy(last, b[full:])
	return o.at(last, block+uint32(full/blockSize), what)
}

// file writes a file's content, streaming it from its Reader in buf-sized pieces.
func (o *output) file(f *node, buf []byte) error {
	what := fmt.Sprintf("file %q", f.file.Path)
	if f.file.Reader == nil {
		return o.data(f.file.Data, f.block, what)
	}
	block := f.block
	for left := f.size; left > 0; {
		n := min(int64(len(buf)), left)
		// Only the last piece can end mid-block, and data pads it.
		got, err := io.ReadFull(f.file.Reader, buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%s: reader ended after %d of %d bytes", what, f.size-left+int64(got), f.size)
			}
			return fmt.Errorf("%s: read at %d: %w", what, f.size-left, err)
		}
		if err := o.data(buf[:n], block, what); err != nil {
			return err
		}
		block += uint32(n / blockSize)
		left -= n
	}
	return nil
}

// recordDate is a directory record's 7-byte time: years since 1900, month, day, hour, minute,
// second, offset from GMT in 15-minute steps (0: UTC).
func recordDate(t time.Time) [7]byte {
	return [7]byte{byte(t.Year() - 1900), byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second()), 0}
}

// descriptorDate is a volume descriptor's 17-byte time: digits YYYYMMDDHHMMSScc, then the GMT
// offset.
func descriptorDate(t time.Time) []byte {
	s := fmt.Sprintf("%04d%02d%02d%02d%02d%02d%02d", t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e7)
	return append([]byte(s), 0)
}

// unsetDate is the "not specified" descriptor time: all digits zero, offset zero.
func unsetDate() []byte { return append([]byte("0000000000000000"), 0) }

func (l *layout) pvd(opts Options) []byte {
	b := make([]byte, blockSize)
	b[0] = vdPrimary
	copy(b[1:], standardID)
	b[6] = 1
	fill := func(off, n int, s string) {
		for i := 0; i < n; i++ {
			b[off+i] = ' '
		}
		copy(b[off:off+n], s)
	}
	fill(8, 32, "")               // system identifier
	fill(40, 32, opts.VolumeID)   // volume identifier
	putBoth32(b[80:], l.total)    // volume space size
	putBoth16(b[120:], 1)         // volume set size
	putBoth16(b[124:], 1)         // volume sequence number
	putBoth16(b[128:], blockSize) // logical block size
	putBoth32(b[132:], uint32(l.pathTable))
	binary.LittleEndian.PutUint32(b[140:], l.lPath)
	binary.BigEndian.PutUint32(b[148:], l.mPath)
	root := &dirRecord{target: l.root, id: []byte{0}}
	root.marshal(b[156:190], recordDate(opts.Time), 0, 0)
	fill(190, 128, "") // volume set identifier
	fill(318, 128, "") // publisher
	fill(446, 128, "") // data preparer
	fill(574, 128, "") // application
	fill(702, 37, "")  // copyright file
	fill(739, 37, "")  // abstract file
	fill(776, 37, "")  // bibliographic file
	date := descriptorDate(opts.Time)
	copy(b[813:], date) // creation
	copy(b[830:], date) // modification
	copy(b[847:], unsetDate())
	copy(b[864:], date) // effective
	b[881] = 1          // file structure version
	return b
}

func pathTableRecordLen(d *node) int {
	n := 8 + len(pathTableID(d))
	return n + n%2
}

func pathTableID(d *node) []byte {
	if d.parent == d {
		return []byte{0}
	}
	return []byte(d.id.String())
}

// pathTableBytes is the path table (ECMA-119 9.4) with numbers in the given byte order, padded
// to whole blocks.
func (l *layout) pathTableBytes(order binary.ByteOrder) []byte {
	b := make([]byte, blocksFor(l.pathTable)*blockSize)
	p := 0
	for _, d := range l.dirs {
		id := pathTableID(d)
		b[p] = byte(len(id))
		order.PutUint32(b[p+2:], d.block)
		order.PutUint16(b[p+6:], uint16(d.parent.number))
		copy(b[p+8:], id)
		p += pathTableRecordLen(d)
	}
	return b
}
