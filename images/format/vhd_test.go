package format

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestVHDGeometry(t *testing.T) {
	for _, c := range []struct {
		sectors int64
		c       uint16
		h, s    uint8
	}{
		// Small disks: 17 sectors per track, at least 4 heads.
		{2048, 30, 4, 17},       // 1 MiB
		{131072, 963, 8, 17},    // 64 MiB: 8 heads keep cylinders under 1024
		{2097152, 2080, 16, 63}, // 1 GiB: 17 and 31 sectors run out of cylinders
		{409600, 825, 16, 31},   // 200 MiB: fits with 31
		// From 65535*16*63 sectors on, 255 sectors and 16 heads.
		{65535 * 16 * 63, 16191, 16, 255},
		{83886080, 20560, 16, 255}, // 40 GiB
		// Beyond the largest geometry, it stays the largest.
		{65535 * 16 * 255, 65535, 16, 255},
		{1 << 32, 65535, 16, 255}, // 2 TiB
	} {
		c1, h1, s1 := vhdGeometry(c.sectors)
		if c1 != c.c || h1 != c.h || s1 != c.s {
			t.Errorf("vhdGeometry(%d) = %d/%d/%d, want %d/%d/%d", c.sectors, c1, h1, s1, c.c, c.h, c.s)
		}
		if int64(c1)*int64(h1)*int64(s1) > c.sectors {
			t.Errorf("vhdGeometry(%d): CHS holds more sectors than the disk", c.sectors)
		}
	}
}

func TestVHDFooter(t *testing.T) {
	opts := Options{Time: time.Date(2000, 1, 1, 0, 1, 40, 0, time.UTC), UUID: [16]byte{1, 2, 3}}
	b, err := vhdFooter(64*mib, opts)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	for _, c := range []struct {
		field string
		got   any
		want  any
	}{
		{"cookie", string(b[0:8]), "conectix"},
		{"features", be.Uint32(b[8:]), uint32(2)},
		{"version", be.Uint32(b[12:]), uint32(0x10000)},
		{"data offset", be.Uint64(b[16:]), ^uint64(0)},
		{"timestamp", be.Uint32(b[24:]), uint32(100)},
		{"creator", string(b[28:32]), "blst"},
		{"original size", be.Uint64(b[40:]), uint64(64 * mib)},
		{"current size", be.Uint64(b[48:]), uint64(64 * mib)},
		{"geometry", [4]byte(b[56:60]), [4]byte{963 >> 8, 963 & 0xff, 8, 17}},
		{"disk type", be.Uint32(b[60:]), uint32(2)},
		{"unique id", [16]byte(b[68:84]), opts.UUID},
		{"saved state and reserved", bytes.Count(b[84:], []byte{0}), 512 - 84},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	// The checksum makes the byte sum of the whole footer 0xFFFFFFFF
	// minus the checksum's own bytes, i.e. verify it independently.
	var sum uint32
	for _, c := range append(append([]byte{}, b[:64]...), b[68:]...) {
		sum += uint32(c)
	}
	if got := be.Uint32(b[64:]); got != ^sum {
		t.Errorf("checksum %#x, want %#x", got, ^sum)
	}
}

func TestVHDTimestamp(t *testing.T) {
	for _, c := range []struct {
		t    time.Time
		want uint32
		err  string
	}{
		{time.Time{}, 0, ""},
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 0, ""},
		{time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), 757476245, ""},
		{time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), 0, "1999-12-31T23:59:59Z cannot be stored"},
		{time.Date(2137, 1, 1, 0, 0, 0, 0, time.UTC), 0, "cannot be stored"},
	} {
		got, err := vhdTimestamp(c.t)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("vhdTimestamp(%v) = %d, %v; want %d, %q", c.t, got, err, c.want, c.err)
		}
	}
}

// ExactVHDSize gives sizes the geometry describes exactly, whole MiB, no smaller than asked and no
// more than 255 MiB bigger, across the geometry's branches.
func TestExactVHDSize(t *testing.T) {
	for _, min := range []int64{1, mib, 64*mib + 1, 200 * mib, 466 * mib, 1 << 30, 40 << 30, 100 << 30} {
		got := ExactVHDSize(min)
		c, h, s := vhdGeometry(got / sectorSize)
		if got < min || got%mib != 0 || got-min >= 256*mib {
			t.Errorf("ExactVHDSize(%d) = %d", min, got)
		}
		if chs := int64(c) * int64(h) * int64(s) * sectorSize; chs != got {
			t.Errorf("ExactVHDSize(%d) = %d, but its geometry %d/%d/%d describes %d", min, got, c, h, s, chs)
		}
	}
	// Past the largest geometry nothing is exact: a whole MiB is the best there is.
	if got := ExactVHDSize(200 << 30); got != 200<<30 {
		t.Errorf("ExactVHDSize(200 GiB) = %d", got)
	}
}
