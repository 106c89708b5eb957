// Package payload writes an image version's update payload (contract.Payload): the root file
// system, its verity tree and each slot's UKI, zstd-compressed and named by the sha256 of the
// compressed bytes, beside payload.json. Compression is deterministic (one level, one encoder
// goroutine), so the same build gives the same payload and a file that did not change between
// versions keeps its name.
package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/ballast-os/ballast/contract"
	"github.com/klauspost/compress/zstd"
)

// FileName is payload.json's name in the payload directory.
const FileName = "payload.json"

// Level is the zstd level of every payload file. On the qemu variant's 84 MB EROFS root (lz4hc
// inside) "better" gives 61.5 MB in 1.6 s, "default" 68.7 MB in 0.7 s and "best" 55.8 MB in 15 s;
// better is most of best's gain for a tenth of its time.
const Level = zstd.SpeedBetterCompression

// Kinds of payload files, as PayloadFileName names them.
const (
	KindRoot   = "root"
	KindVerity = "verity"
)

// KindUKI is the kind of a slot's UKI: "uki-a", "uki-b".
func KindUKI(s contract.Slot) string { return "uki-" + string(s) }

// Sources are the raw files of a payload: host paths.
type Sources struct {
	Root   string
	Verity string
	UKI    map[contract.Slot]string
}

// Write compresses the sources into dir and writes payload.json there: head with its Root, Verity
// and UKI filled in. Every other file in dir (a payload of an earlier build) is removed, after the
// new payload is complete.
func Write(dir string, head contract.Payload, src Sources) (contract.Payload, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return contract.Payload{}, fmt.Errorf("payload: %w", err)
	}
	p := head
	var err error
	if p.Root, err = Compress(dir, KindRoot, src.Root); err != nil {
		return contract.Payload{}, err
	}
	if p.Verity, err = Compress(dir, KindVerity, src.Verity); err != nil {
		return contract.Payload{}, err
	}
	p.UKI = map[contract.Slot]contract.PayloadFile{}
	for _, s := range []contract.Slot{contract.SlotA, contract.SlotB} {
		path, ok := src.UKI[s]
		if !ok {
			return contract.Payload{}, fmt.Errorf("payload: no UKI for slot %s", s)
		}
		if p.UKI[s], err = Compress(dir, KindUKI(s), path); err != nil {
			return contract.Payload{}, err
		}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return contract.Payload{}, fmt.Errorf("payload: %w", err)
	}
	if err := writeFile(filepath.Join(dir, FileName), append(b, '\n')); err != nil {
		return contract.Payload{}, err
	}
	return p, prune(dir, append(Names(p), FileName))
}

// Names lists the payload's files, root first.
func Names(p contract.Payload) []string {
	names := []string{p.Root.Name, p.Verity.Name}
	for _, s := range []contract.Slot{contract.SlotA, contract.SlotB} {
		if f, ok := p.UKI[s]; ok {
			names = append(names, f.Name)
		}
	}
	return names
}

// Size is the compressed bytes of all the payload's files.
func Size(p contract.Payload) int64 {
	n := p.Root.Size + p.Verity.Size
	for _, f := range p.UKI {
		n += f.Size
	}
	return n
}

// Compress writes src to dir as a compressed payload file of this kind, named by its hash.
func Compress(dir, kind, src string) (contract.PayloadFile, error) {
	in, err := os.Open(src)
	if err != nil {
		return contract.PayloadFile{}, fmt.Errorf("payload %s: %w", kind, err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-"+kind+"-")
	if err != nil {
		return contract.PayloadFile{}, fmt.Errorf("payload %s: %w", kind, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum, raw := sha256.New(), sha256.New()
	n := &counter{w: io.MultiWriter(tmp, sum)}
	enc, err := zstd.NewWriter(n, zstd.WithEncoderLevel(Level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return contract.PayloadFile{}, fmt.Errorf("payload %s: %w", kind, err)
	}
	rawSize, err := io.Copy(io.MultiWriter(enc, raw), in)
	if err == nil {
		err = enc.Close()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return contract.PayloadFile{}, fmt.Errorf("payload %s: %s: %w", kind, src, err)
	}
	f := contract.PayloadFile{Size: n.n, SHA256: hex.EncodeToString(sum.Sum(nil)), RawSize: rawSize, RawSHA256: hex.EncodeToString(raw.Sum(nil))}
	f.Name = contract.PayloadFileName(f.SHA256, kind)
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return contract.PayloadFile{}, fmt.Errorf("payload %s: %w", kind, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, f.Name)); err != nil {
		return contract.PayloadFile{}, fmt.Errorf("payload %s: %w", kind, err)
	}
	return f, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}

// prune removes every entry of dir but keep.
func prune(dir string, keep []string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	for _, e := range entries {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("payload: remove stale %s: %w", e.Name(), err)
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[0-9a-f]{64}\.([a-z]+(?:-[ab])?)\.zst$`)

// Read reads the payload in dir and checks it whole: payload.json's fields, and every file's
// name, size and sha256, compressed and decompressed. The error names the file.
func Read(dir string) (contract.Payload, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return contract.Payload{}, fmt.Errorf("payload: %w", err)
	}
	var p contract.Payload
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return contract.Payload{}, fmt.Errorf("payload %s: %w", path, err)
	}
	if err := contract.ValidateVersion(p.Version); err != nil {
		return contract.Payload{}, fmt.Errorf("payload %s: %w", path, err)
	}
	if h, err := hex.DecodeString(p.RootHash); err != nil || len(h) != sha256.Size {
		return contract.Payload{}, fmt.Errorf("payload %s: roothash %q is not a sha256", path, p.RootHash)
	}
	if p.Variant == "" || p.Arch == "" || p.VerityBlocks == 0 {
		return contract.Payload{}, fmt.Errorf("payload %s: variant, arch or verity_blocks missing", path)
	}
	files := []struct {
		kind string
		f    contract.PayloadFile
	}{{KindRoot, p.Root}, {KindVerity, p.Verity}}
	for _, s := range []contract.Slot{contract.SlotA, contract.SlotB} {
		f, ok := p.UKI[s]
		if !ok {
			return contract.Payload{}, fmt.Errorf("payload %s: no UKI for slot %s", path, s)
		}
		files = append(files, struct {
			kind string
			f    contract.PayloadFile
		}{KindUKI(s), f})
	}
	if len(p.UKI) != 2 {
		return contract.Payload{}, fmt.Errorf("payload %s: UKIs for %d slots, want a and b", path, len(p.UKI))
	}
	for _, x := range files {
		if err := check(dir, x.kind, x.f); err != nil {
			return contract.Payload{}, fmt.Errorf("payload %s: %w", dir, err)
		}
	}
	// A verity tree that does not cover the root would fail every boot of the slot.
	if p.Root.RawSize != int64(p.VerityBlocks)*contract.VerityBlockSize {
		return contract.Payload{}, fmt.Errorf("payload %s: root of %d bytes, verity_blocks %d cover %d", path, p.Root.RawSize, p.VerityBlocks, int64(p.VerityBlocks)*contract.VerityBlockSize)
	}
	return p, nil
}

func check(dir, kind string, f contract.PayloadFile) error {
	if m := nameRE.FindStringSubmatch(f.Name); m == nil || m[1] != kind || f.Name != contract.PayloadFileName(f.SHA256, kind) {
		return fmt.Errorf("%s: file %q is not <sha256>.%s.zst of its sha256 %s", kind, f.Name, kind, f.SHA256)
	}
	in, err := os.Open(filepath.Join(dir, f.Name))
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	defer in.Close()
	sum, raw := sha256.New(), sha256.New()
	dec, err := zstd.NewReader(io.TeeReader(in, sum), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	defer dec.Close()
	rawSize, err := io.Copy(raw, dec)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", kind, f.Name, err)
	}
	// The decoder may stop at the frame's end: what follows must be read and hashed too.
	if _, err := io.Copy(sum, in); err != nil {
		return fmt.Errorf("%s: %s: %w", kind, f.Name, err)
	}
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	for _, c := range []struct {
		what      string
		got, want string
	}{
		{"size", fmt.Sprint(st.Size()), fmt.Sprint(f.Size)},
		{"sha256", hexSum(sum), f.SHA256},
		{"decompressed size", fmt.Sprint(rawSize), fmt.Sprint(f.RawSize)},
		{"decompressed sha256", hexSum(raw), f.RawSHA256},
	} {
		if c.got != c.want {
			return fmt.Errorf("%s: %s: %s is %s, payload.json says %s", kind, f.Name, c.what, c.got, c.want)
		}
	}
	return nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
