package vmtest

import (
	"fmt"
	"os"
)

// cpioWriter builds a "newc" (SVR4, no CRC) archive in memory, the format the kernel unpacks as
// initramfs. Written here rather than with the cpio tool so device nodes need no root.
type cpioWriter struct {
	buf []byte
	ino uint32
}

func newCpio() *cpioWriter { return &cpioWriter{ino: 1} }

func (w *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) {
	w.ino++
	nlink := uint32(1)
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fields := []uint32{w.ino, mode, 0, 0, nlink, 0, uint32(len(data)), 0, 0, rdevMajor, rdevMinor, uint32(len(name) + 1), 0}
	hdr := "070701"
	for _, f := range fields {
		hdr += fmt.Sprintf("%08x", f)
	}
	w.buf = append(w.buf, hdr...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, 0)
	w.pad()
	w.buf = append(w.buf, data...)
	w.pad()
}

func (w *cpioWriter) pad() {
	for len(w.buf)%4 != 0 {
		w.buf = append(w.buf, 0)
	}
}

func (w *cpioWriter) dir(name string) { w.entry(name, 0o040755, 0, 0, nil) }

func (w *cpioWriter) charDev(name string, major, minor uint32) {
	w.entry(name, 0o020600, major, minor, nil)
}

func (w *cpioWriter) data(name string, b []byte, perm uint32) { w.entry(name, 0o100000|perm, 0, 0, b) }

func (w *cpioWriter) file(name, src string, perm uint32) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	w.data(name, b, perm)
	return nil
}

func (w *cpioWriter) finish() []byte {
	w.entry("TRAILER!!!", 0, 0, 0, nil)
	return w.buf
}
