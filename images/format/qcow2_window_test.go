package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/flate"
)

// TestQCOW2CompressedWindow reads the compressed clusters back through the
// L1 and L2 tables and inflates each with QEMU's window bits (-12): a reader
// that inflates piecewise, unlike QEMU itself, rejects a reference further
// back than 4 KiB. The inflater is the test's own (inflateWindow), since
// neither Go's nor klauspost's lets the window be narrowed, and it must give
// back the raw disk's bytes.
func TestQCOW2CompressedWindow(t *testing.T) {
	raw := makeDisk(t, 64*mib, testPatches(64*mib))
	out := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := Convert(context.Background(), raw, out, QCOW2, Options{Compress: true}); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	l1Size, l1Off := be.Uint32(img[36:]), be.Uint64(img[40:])
	n := 0
	for i := range uint64(l1Size) {
		l2 := be.Uint64(img[l1Off+8*i:]) &^ qcowCopied
		if l2 == 0 {
			continue
		}
		for j := range uint64(qcowL2Entries) {
			e := be.Uint64(img[l2+8*j:])
			if e&qcowCompressed == 0 {
				continue
			}
			off := e & (1<<qcowCSizeShift - 1)
			extra := (e &^ qcowCompressed) >> qcowCSizeShift
			end := (off/sectorSize + extra + 1) * sectorSize
			guest := (i*qcowL2Entries + j) * qcowClusterSize
			got, err := inflateWindow(img[off:end], 1<<12)
			if err != nil {
				t.Fatalf("cluster at %#x: %v", guest, err)
			}
			if !bytes.Equal(got, disk[guest:guest+qcowClusterSize]) {
				t.Fatalf("cluster at %#x inflates to other bytes than the raw disk has", guest)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no compressed clusters found")
	}
	t.Logf("%d compressed clusters inflate within a 4 KiB window", n)
}

// TestInflateWindowRefusesFarReferences makes sure the check above can fail:
// a stream from a 32 KiB-window encoder that refers 8 KiB back is refused,
// and the same stream inflates with a window that wide.
func TestInflateWindowRefusesFarReferences(t *testing.T) {
	block := pseudoRandom(3, 8192)
	data := append(bytes.Clone(block), block...)
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	if _, err := inflateWindow(buf.Bytes(), 1<<12); err == nil || !errors.Is(err, errTooFarBack) {
		t.Fatalf("8 KiB reference with a 4 KiB window: err = %v, want %v", err, errTooFarBack)
	}
	got, err := inflateWindow(buf.Bytes(), 1<<15)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("32 KiB window: %d bytes, %v; want the %d bytes back", len(got), err, len(data))
	}
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed} {
		buf.Reset()
		w, _ := flate.NewWriter(&buf, level)
		w.Write(data[:5000])
		w.Close()
		if got, err := inflateWindow(buf.Bytes(), 1<<15); err != nil || !bytes.Equal(got, data[:5000]) {
			t.Errorf("level %d: %v", level, err)
		}
	}
}

var errTooFarBack = errors.New("invalid distance too far back")

// inflateWindow decodes raw DEFLATE (RFC 1951) as zlib does with a window of
// window bytes: a back reference further than that is an error, as zlib's
// "invalid distance too far back".
func inflateWindow(data []byte, window int) ([]byte, error) {
	r := &bitReader{b: data}
	var out []byte
	for {
		final, err := r.bits(1)
		if err != nil {
			return nil, err
		}
		typ, err := r.bits(2)
		if err != nil {
			return nil, err
		}
		switch typ {
		case 0:
			r.pos = (r.pos + 7) &^ 7
			i := r.pos / 8
			if i+4 > len(data) {
				return nil, errors.New("stored block: truncated header")
			}
			n := int(binary.LittleEndian.Uint16(data[i:]))
			if ^uint16(n) != binary.LittleEndian.Uint16(data[i+2:]) || i+4+n > len(data) {
				return nil, errors.New("stored block: bad length")
			}
			out = append(out, data[i+4:i+4+n]...)
			r.pos += (4 + n) * 8
		case 1:
			out, err = r.codes(out, &fixedLit, &fixedDist, window)
		case 2:
			var lit, dist huffman
			if lit, dist, err = r.dynamicTables(); err == nil {
				out, err = r.codes(out, &lit, &dist, window)
			}
		default:
			return nil, errors.New("invalid block type")
		}
		if err != nil {
			return nil, err
		}
		if final == 1 {
			return out, nil
		}
	}
}

type bitReader struct {
	b   []byte
	pos int // in bits, least significant bit of each byte first
}

func (r *bitReader) bits(n int) (int, error) {
	v := 0
	for i := range n {
		if r.pos/8 >= len(r.b) {
			return 0, errors.New("unexpected end of stream")
		}
		v |= int(r.b[r.pos/8]>>(r.pos%8)&1) << i
		r.pos++
	}
	return v, nil
}

// huffman is a canonical code: how many codes of each length, and the
// symbols in code order.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) huffman {
	h := huffman{symbol: make([]int, 0, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	for l := 1; l < 16; l++ {
		for s, sl := range lengths {
			if sl == l {
				h.symbol = append(h.symbol, s)
			}
		}
	}
	return h
}

func (r *bitReader) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		code |= b
		count := h.count[l]
		if code-first < count {
			return h.symbol[index+code-first], nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

var (
	lengthBase  = [...]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [...]int{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [...]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [...]int{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

	fixedLit, fixedDist = func() (huffman, huffman) {
		l := make([]int, 288)
		for i := range l {
			switch {
			case i < 144:
				l[i] = 8
			case i < 256:
				l[i] = 9
			case i < 280:
				l[i] = 7
			default:
				l[i] = 8
			}
		}
		d := make([]int, 30)
		for i := range d {
			d[i] = 5
		}
		return newHuffman(l), newHuffman(d)
	}()
)

func (r *bitReader) dynamicTables() (lit, dist huffman, err error) {
	var hlit, hdist, hclen int
	for _, f := range []struct {
		v          *int
		bits, base int
	}{{&hlit, 5, 257}, {&hdist, 5, 1}, {&hclen, 4, 4}} {
		n, err := r.bits(f.bits)
		if err != nil {
			return lit, dist, err
		}
		*f.v = n + f.base
	}
	order := [...]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	clen := make([]int, 19)
	for i := range hclen {
		if clen[order[i]], err = r.bits(3); err != nil {
			return lit, dist, err
		}
	}
	ch := newHuffman(clen)
	lengths := make([]int, 0, hlit+hdist)
	for len(lengths) < hlit+hdist {
		sym, err := r.decode(&ch)
		if err != nil {
			return lit, dist, err
		}
		if sym < 16 {
			lengths = append(lengths, sym)
			continue
		}
		val, extra, base := 0, 7, 11
		switch sym {
		case 16:
			if len(lengths) == 0 {
				return lit, dist, errors.New("repeat with no previous length")
			}
			val, extra, base = lengths[len(lengths)-1], 2, 3
		case 17:
			extra, base = 3, 3
		}
		n, err := r.bits(extra)
		if err != nil {
			return lit, dist, err
		}
		for range n + base {
			lengths = append(lengths, val)
		}
	}
	if len(lengths) > hlit+hdist {
		return lit, dist, errors.New("code lengths overrun the tables")
	}
	return newHuffman(lengths[:hlit]), newHuffman(lengths[hlit:]), nil
}

func (r *bitReader) codes(out []byte, lit, dist *huffman, window int) ([]byte, error) {
	for {
		sym, err := r.decode(lit)
		if err != nil {
			return nil, err
		}
		switch {
		case sym < 256:
			out = append(out, byte(sym))
			continue
		case sym == 256:
			return out, nil
		case sym > 285:
			return nil, fmt.Errorf("invalid length symbol %d", sym)
		}
		sym -= 257
		n, err := r.bits(lengthExtra[sym])
		if err != nil {
			return nil, err
		}
		length := lengthBase[sym] + n
		ds, err := r.decode(dist)
		if err != nil {
			return nil, err
		}
		if ds >= len(distBase) {
			return nil, fmt.Errorf("invalid distance symbol %d", ds)
		}
		n, err = r.bits(distExtra[ds])
		if err != nil {
			return nil, err
		}
		d := distBase[ds] + n
		if d > window || d > len(out) {
			return nil, fmt.Errorf("%w: %d bytes back, %d written, window %d", errTooFarBack, d, len(out), window)
		}
		for range length {
			out = append(out, out[len(out)-d])
		}
	}
}
