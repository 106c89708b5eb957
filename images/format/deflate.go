package format

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
)

// qcowWindow is the deflate window QEMU compresses QCOW2 clusters with and
// declares when inflating them (windowBits -12). QEMU inflates a whole
// cluster in one call, which happens to tolerate references further back,
// but a reader that inflates piecewise would reject them. Keeping to 4 KiB
// costs some size: klauspost's only window-limited encoder is its fast one.
const qcowWindow = 1 << 12

// deflateLevel is the level for VMDK grains and the GCE tarball: klauspost's
// 7 is its first level with lazy matching, about 10% smaller than its
// default on a Ballast image (close to zlib -6) for under twice the time.
const deflateLevel = 7

// deflater compresses one cluster or grain at a time into a reused buffer.
type deflater struct {
	buf bytes.Buffer
	w   interface {
		io.WriteCloser
		Reset(io.Writer)
	}
}

// newQCOWDeflater compresses QCOW2 clusters: raw deflate (RFC 1951), no
// header, within QEMU's 4 KiB window.
func newQCOWDeflater() (*deflater, error) {
	d := &deflater{}
	w, err := flate.NewWriterWindow(&d.buf, qcowWindow)
	if err != nil {
		return nil, err
	}
	d.w = w
	return d, nil
}

// newVMDKDeflater compresses VMDK grains: zlib streams (RFC 1950), which is
// what the VMDK specification's "deflate" means and what readers inflate.
func newVMDKDeflater() (*deflater, error) {
	d := &deflater{}
	w, err := zlib.NewWriterLevel(&d.buf, deflateLevel)
	if err != nil {
		return nil, err
	}
	d.w = w
	return d, nil
}

// compress returns the compressed form of b, valid until the next call.
// Each call is a fresh stream, so the output depends on b alone.
func (d *deflater) compress(b []byte) ([]byte, error) {
	d.buf.Reset()
	d.w.Reset(&d.buf)
	if _, err := d.w.Write(b); err != nil {
		return nil, err
	}
	if err := d.w.Close(); err != nil {
		return nil, err
	}
	return d.buf.Bytes(), nil
}
