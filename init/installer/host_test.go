package installer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/gpt"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/tests/testutil"
)

// host is a fake sysfs and /dev in a temp dir: disks are sparse files, sysfs the attributes the
// installer reads. The kernel's own sysfs cannot be staged, so this is what tests drive.
type host struct {
	t        *testing.T
	sys, dev string
}

func newHost(t *testing.T) *host {
	dir := t.TempDir()
	h := &host{t: t, sys: filepath.Join(dir, "sys"), dev: filepath.Join(dir, "dev")}
	for _, d := range []string{filepath.Join(h.sys, "class", "block"), h.dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// disk adds a whole disk of size bytes with sysfs attributes attrs (path relative to the
// device's sysfs directory -> content) and returns its node.
func (h *host) disk(name string, size int64, attrs map[string]string) string {
	h.t.Helper()
	sys := filepath.Join(h.sys, "class", "block", name)
	files := map[string]string{"size": strconv.FormatInt(size/512, 10), "ro": "0", "queue/logical_block_size": "512"}
	for k, v := range attrs {
		files[k] = v
	}
	for k, v := range files {
		p := filepath.Join(sys, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	node := filepath.Join(h.dev, name)
	f, err := os.Create(node)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		h.t.Fatal(err)
	}
	return node
}

// diskFrom adds a disk holding the bytes of file img.
func (h *host) diskFrom(name, img string) string {
	h.t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		h.t.Fatal(err)
	}
	size := (int64(len(b)) + 511) / 512 * 512
	node := h.disk(name, size, nil)
	if err := os.WriteFile(node, b, 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Truncate(node, size); err != nil {
		h.t.Fatal(err)
	}
	return node
}

// partition adds a partition of disk (only its existence and size matter to the installer).
func (h *host) partition(disk, name string, size int64) string {
	sys := filepath.Join(h.sys, "class", "block", name)
	if err := os.MkdirAll(sys, 0o755); err != nil {
		h.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sys, "partition"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(sys, "size"), []byte(strconv.FormatInt(size/512, 10)), 0o644)
	node := filepath.Join(h.dev, name)
	f, err := os.Create(node)
	if err != nil {
		h.t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	return node
}

// dirMedium is a Medium over a directory.
type dirMedium string

func (d dirMedium) Open(_ context.Context, name string) (io.ReadCloser, int64, error) {
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(name)))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// isoMedia is a MediumOpener for ISO images genisoimage made: it reads the volume ID from the
// device, as the real reader would, and serves the directory the image was made from.
func isoMedia(dirs map[string]string) MediumOpener {
	return func(r io.ReaderAt) (Medium, error) {
		b := make([]byte, 16*2048+72)
		if err := readAtFull(r, b, 0); err != nil {
			return nil, err
		}
		dir, ok := dirs[isoVolumeID(b)]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return dirMedium(dir), nil
	}
}

// mkiso makes an ISO9660 image of dir with genisoimage.
func mkiso(t *testing.T, dir, label string) string {
	t.Helper()
	testutil.Tool(t, "genisoimage", "genisoimage")
	out := filepath.Join(t.TempDir(), label+".iso")
	testutil.Run(t, "genisoimage", "-quiet", "-V", label, "-J", "-R", "-o", out, dir)
	return out
}

// genisoVolume is a VolumeWriter by genisoimage, the tool cloud-init's documentation uses for
// NoCloud seeds.
func genisoVolume(t *testing.T) VolumeWriter {
	return func(w io.WriterAt, label string, _ time.Time, files []File) (int64, error) {
		dir := t.TempDir()
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f.Path), f.Data, 0o644); err != nil {
				return 0, err
			}
		}
		out := filepath.Join(t.TempDir(), "seed.iso")
		if b, err := exec.Command("genisoimage", "-quiet", "-V", label, "-J", "-R", "-o", out, dir).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v: %s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return 0, err
		}
		n, err := w.WriteAt(b, 0)
		return int64(n), err
	}
}

// testImage is a small Ballast-like disk image: a GPT with an ESP and a data partition at the
// 1 MiB-aligned offsets the builder uses, random contents, and its install.json.
type testImage struct {
	raw      []byte
	manifest contract.InstallManifest
	diskGUID gpt.GUID
}

func newTestImage(t *testing.T, size int64) *testImage {
	t.Helper()
	raw := make([]byte, size)
	sectors := uint64(size / 512)
	var guid gpt.GUID
	rand.Read(guid[:])
	tbl, err := gpt.New(512, sectors, guid)
	if err != nil {
		t.Fatal(err)
	}
	esp, _ := gpt.ParseGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
	data, _ := gpt.ParseGUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
	parts := []gpt.Partition{
		{Number: 1, Type: esp, FirstLBA: 2048, LastLBA: 2*2048 - 1, Name: "esp"},
		{Number: 2, Type: data, FirstLBA: 2 * 2048, LastLBA: sectors - 2048 - 1, Name: "data"},
	}
	for i := range parts {
		rand.Read(parts[i].ID[:])
		if err := tbl.SetPartition(parts[i]); err != nil {
			t.Fatal(err)
		}
		rand.Read(raw[parts[i].FirstLBA*512 : (parts[i].LastLBA+1)*512])
	}
	if err := tbl.WriteNew(sliceWriter(raw)); err != nil {
		t.Fatal(err)
	}
	img := &testImage{raw: raw, diskGUID: guid}
	region := func(name string, off, end int64) {
		sum := sha256.Sum256(raw[off:end])
		img.manifest.Regions = append(img.manifest.Regions, contract.InstallRegion{Name: name, Offset: off, Size: end - off, SHA256: hex.EncodeToString(sum[:])})
	}
	region("gpt", 0, 1<<20)
	for _, p := range parts {
		region(p.Name, int64(p.FirstLBA)*512, int64(p.LastLBA+1)*512)
	}
	region("tail", size-1<<20, size)
	img.manifest.Variant, img.manifest.Version, img.manifest.Arch = "metal", "1.0.0", "x86_64"
	return img
}

type sliceWriter []byte

func (s sliceWriter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(s)) {
		return 0, io.ErrShortWrite
	}
	return copy(s[off:], p), nil
}

// writeMedium writes the compressed image (without zstd's own checksum, so the installer's
// sha256 is what catches a changed byte) and install.json into dir, plus extra files.
func (img *testImage) writeMedium(t *testing.T, dir string, extra map[string][]byte) {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(img.raw, nil)
	sum := sha256.Sum256(z)
	img.manifest.Image = contract.InstallImage{File: contract.InstallImageFile, Compression: "zstd", Size: int64(len(z)), SHA256: hex.EncodeToString(sum[:]), DiskSize: int64(len(img.raw))}
	m, err := json.Marshal(img.manifest)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{contract.InstallImageFile: z, contract.InstallManifestFile: m}
	for k, v := range extra {
		files[k] = v
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run is an install on the fake host; it records the console, reboots and halts.
type run struct {
	out      bytes.Buffer
	rebooted bool
	halted   string
	err      error
}

func (h *host) config(media map[string]string, cmdline string) Config {
	return Config{
		Cmdline:      contract.ParseCmdline(cmdline),
		SysDir:       h.sys,
		DevDir:       h.dev,
		OpenMedium:   isoMedia(media),
		Volume:       genisoVolume(h.t),
		MediumWait:   200 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
		Now:          func() time.Time { return time.Unix(1700000000, 0) },
	}
}

func (r *run) install(cfg Config) *run {
	cfg.Reboot = func() error { r.rebooted = true; return nil }
	cfg.Halt = func(_ context.Context, _ *console.Writer, msg string) { r.halted = msg }
	con := &console.Writer{Out: &r.out, Uptime: func() float64 { return 1 }}
	r.err = Run(context.Background(), con, cfg)
	return r
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
