package install

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/ballast-os/ballast/contract"
	"github.com/klauspost/compress/zstd"
)

// Decompress opens the compressed payload file at path and returns its decompressed bytes. The
// reader checks as it goes what payload.json promises: it fails as soon as more than f.RawSize
// bytes come out, and at the end (instead of io.EOF) when the size or the sha256 of the
// decompressed bytes, or of the compressed file itself, is not the promised one. A caller that
// acts on the bytes only once the reader has returned io.EOF never acts on a wrong file.
func Decompress(path string, f contract.PayloadFile) (io.ReadCloser, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("payload file %s: %w", f.Name, err)
	}
	r := &verifier{file: file, pf: f, path: path, raw: sha256.New(), packed: sha256.New()}
	r.tee = io.TeeReader(file, countingHash{r.packed, &r.packedN})
	r.z, err = zstd.NewReader(r.tee, zstd.WithDecoderConcurrency(1))
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("payload file %s: %w", f.Name, err)
	}
	return r, nil
}

type verifier struct {
	file    *os.File
	tee     io.Reader
	z       *zstd.Decoder
	pf      contract.PayloadFile
	path    string
	raw     hash.Hash
	packed  hash.Hash
	rawN    int64
	packedN int64
	err     error // sticky: once wrong, always wrong
}

// countingHash hashes and counts what passes through a TeeReader.
type countingHash struct {
	h hash.Hash
	n *int64
}

func (c countingHash) Write(p []byte) (int, error) {
	*c.n += int64(len(p))
	return c.h.Write(p)
}

func (r *verifier) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.z.Read(p)
	r.raw.Write(p[:n])
	r.rawN += int64(n)
	if r.rawN > r.pf.RawSize {
		r.err = fmt.Errorf("payload file %s: decompresses to more than the %d bytes payload.json gives", r.pf.Name, r.pf.RawSize)
		return 0, r.err
	}
	switch {
	case err == io.EOF:
		r.err = r.finish()
		return n, r.err
	case err != nil:
		r.err = fmt.Errorf("payload file %s: decompress: %w", r.pf.Name, err)
		return n, r.err
	}
	return n, nil
}

// finish checks the sizes and hashes once the decompressor is done; io.EOF when all match.
func (r *verifier) finish() error {
	// The decompressor may stop before the end of the file; what follows must still be hashed.
	if _, err := io.Copy(io.Discard, r.tee); err != nil {
		return fmt.Errorf("payload file %s: %w", r.pf.Name, err)
	}
	if r.packedN != r.pf.Size {
		return fmt.Errorf("payload file %s: %s is %d bytes, payload.json says %d", r.pf.Name, r.path, r.packedN, r.pf.Size)
	}
	if got := hex.EncodeToString(r.packed.Sum(nil)); got != r.pf.SHA256 {
		return fmt.Errorf("payload file %s: sha256 of %s is %s, payload.json says %s", r.pf.Name, r.path, got, r.pf.SHA256)
	}
	if r.rawN != r.pf.RawSize {
		return fmt.Errorf("payload file %s: decompresses to %d bytes, payload.json says %d", r.pf.Name, r.rawN, r.pf.RawSize)
	}
	if got := hex.EncodeToString(r.raw.Sum(nil)); got != r.pf.RawSHA256 {
		return fmt.Errorf("payload file %s: decompressed sha256 is %s, payload.json says %s", r.pf.Name, got, r.pf.RawSHA256)
	}
	return io.EOF
}

func (r *verifier) Close() error {
	r.z.Close()
	return r.file.Close()
}
