package fat_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// volumeReader reads back a FAT32 image in memory, written from the on-disk
// format rather than from the writer's code, so tests can check a volume
// without mounting it or needing mtools.
type volumeReader struct {
	img          []byte
	clusterBytes int
	fatOff       int
	dataOff      int
	rootCluster  uint32
}

type dirent struct {
	name    string // long name when present, else the 8.3 form
	short   string
	attr    byte
	cluster uint32
	size    uint32
}

func newVolumeReader(img []byte) (*volumeReader, error) {
	le := binary.LittleEndian
	if le.Uint16(img[510:]) != 0xAA55 {
		return nil, fmt.Errorf("no boot signature")
	}
	bps := int(le.Uint16(img[11:]))
	spc := int(img[13])
	reserved := int(le.Uint16(img[14:]))
	fats := int(img[16])
	fatSize := int(le.Uint32(img[36:]))
	return &volumeReader{
		img:          img,
		clusterBytes: bps * spc,
		fatOff:       reserved * bps,
		dataOff:      (reserved + fats*fatSize) * bps,
		rootCluster:  le.Uint32(img[44:]),
	}, nil
}

func (r *volumeReader) fat(c uint32) uint32 {
	return binary.LittleEndian.Uint32(r.img[r.fatOff+4*int(c):]) & 0x0FFFFFFF
}

func (r *volumeReader) chain(first uint32) ([]byte, error) {
	var out []byte
	for c, n := first, 0; c >= 2 && c < 0x0FFFFFF8; c, n = r.fat(c), n+1 {
		if n > len(r.img)/r.clusterBytes {
			return nil, fmt.Errorf("cluster chain from %d loops", first)
		}
		off := r.dataOff + int(c-2)*r.clusterBytes
		out = append(out, r.img[off:off+r.clusterBytes]...)
	}
	return out, nil
}

func (r *volumeReader) readDir(cluster uint32) ([]dirent, error) {
	data, err := r.chain(cluster)
	if err != nil {
		return nil, err
	}
	var out []dirent
	var long []uint16
	var longSum byte
	for i := 0; i+32 <= len(data); i += 32 {
		e := data[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[11] == 0x0F {
			if e[0]&0x40 != 0 {
				long = nil
			}
			var part []uint16
			for _, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				part = append(part, binary.LittleEndian.Uint16(e[off:]))
			}
			long = append(part, long...) // stored last piece first
			longSum = e[13]
			continue
		}
		short := strings.TrimRight(string(e[0:8]), " ")
		if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
			short += "." + ext
		}
		d := dirent{
			name:    short,
			short:   short,
			attr:    e[11],
			cluster: uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:])),
			size:    binary.LittleEndian.Uint32(e[28:]),
		}
		if long != nil {
			var sum byte
			for _, c := range e[0:11] {
				sum = (sum>>1 | sum<<7) + c
			}
			if sum != longSum {
				return nil, fmt.Errorf("long name for %q has checksum %#x, want %#x", short, longSum, sum)
			}
			end := len(long)
			for j, u := range long {
				if u == 0 {
					end = j
					break
				}
			}
			d.name = string(utf16.Decode(long[:end]))
			long = nil
		}
		out = append(out, d)
	}
	return out, nil
}

// lookup resolves a slash path, matching names case-insensitively like FAT.
func (r *volumeReader) lookup(path string) (dirent, error) {
	cur := dirent{attr: 0x10, cluster: r.rootCluster}
	for _, part := range strings.Split(path, "/") {
		if cur.attr&0x10 == 0 {
			return dirent{}, fmt.Errorf("%s: not a directory", path)
		}
		entries, err := r.readDir(cur.cluster)
		if err != nil {
			return dirent{}, err
		}
		found := false
		for _, e := range entries {
			if strings.EqualFold(e.name, part) || strings.EqualFold(e.short, part) {
				cur, found = e, true
				break
			}
		}
		if !found {
			return dirent{}, fmt.Errorf("%s: %q not found", path, part)
		}
	}
	return cur, nil
}

func (r *volumeReader) readFile(path string) ([]byte, error) {
	e, err := r.lookup(path)
	if err != nil {
		return nil, err
	}
	if e.size == 0 {
		return []byte{}, nil
	}
	data, err := r.chain(e.cluster)
	if err != nil {
		return nil, err
	}
	if int(e.size) > len(data) {
		return nil, fmt.Errorf("%s: size %d exceeds its %d-byte chain", path, e.size, len(data))
	}
	return data[:e.size], nil
}
