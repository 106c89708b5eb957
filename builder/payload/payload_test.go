package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/testutil"
)

// sources writes a root of 8 blocks (half compressible text, half noise), a verity tree and two
// UKIs that differ in one byte, as a build's are.
func sources(t *testing.T, seed uint64) Sources {
	t.Helper()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(seed, 1))
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	root := append(bytes.Repeat([]byte("ballast root file system "), 4*4096/25+1)[:4*4096], noise(4*4096)...)
	uki := noise(30_000)
	ukiB := slices.Clone(uki)
	ukiB[100] ^= 1
	files := map[string][]byte{"root.erofs": root, "verity.img": noise(4096), "uki-a.efi": uki, "uki-b.efi": ukiB}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Sources{Root: filepath.Join(dir, "root.erofs"), Verity: filepath.Join(dir, "verity.img"),
		UKI: map[contract.Slot]string{contract.SlotA: filepath.Join(dir, "uki-a.efi"), contract.SlotB: filepath.Join(dir, "uki-b.efi")}}
}

func head() contract.Payload {
	return contract.Payload{Variant: "qemu", Version: "1.0.0", Arch: "amd64", RootHash: strings.Repeat("ab", 32),
		VerityBlocks: 8, Salt: "c0ffee", DatastoreFormat: 2}
}

func TestWriteAndRead(t *testing.T) {
	src := sources(t, 1)
	dir := filepath.Join(t.TempDir(), "update")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A payload of an earlier build, which must go.
	stale := filepath.Join(dir, strings.Repeat("0", 64)+".root.zst")
	os.WriteFile(stale, []byte("old"), 0o644)
	p, err := Write(dir, head(), src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale payload file is still there (%v)", err)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := append(Names(p), FileName)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
	for kind, f := range map[string]contract.PayloadFile{"root": p.Root, "verity": p.Verity, "uki-a": p.UKI["a"], "uki-b": p.UKI["b"]} {
		if !strings.HasSuffix(f.Name, "."+kind+".zst") || f.Name != f.SHA256+"."+kind+".zst" {
			t.Errorf("%s: name %q", kind, f.Name)
		}
		raw, _ := os.ReadFile(map[string]string{"root": src.Root, "verity": src.Verity, "uki-a": src.UKI["a"], "uki-b": src.UKI["b"]}[kind])
		if sum := sha256.Sum256(raw); f.RawSHA256 != hex.EncodeToString(sum[:]) || f.RawSize != int64(len(raw)) {
			t.Errorf("%s: raw %d bytes %s, want %d %x", kind, f.RawSize, f.RawSHA256, len(raw), sum)
		}
	}
	if p.Root.Size >= p.Root.RawSize {
		t.Errorf("root: %d bytes compressed from %d", p.Root.Size, p.Root.RawSize)
	}
	if p.UKI["a"].Name == p.UKI["b"].Name {
		t.Error("the two UKIs have one name")
	}
	back, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b1, _ := json.Marshal(back); !bytes.Equal(b1, mustJSON(t, p)) {
		t.Errorf("Read gives %s\nWrite gave %s", b1, mustJSON(t, p))
	}
	if Size(p) != p.Root.Size+p.Verity.Size+p.UKI["a"].Size+p.UKI["b"].Size {
		t.Errorf("Size = %d", Size(p))
	}

	// The reference zstd reads what the builder writes, and gets the same bytes back.
	zstd := testutil.Tool(t, "zstd", "zstd")
	out := filepath.Join(t.TempDir(), "root")
	testutil.Run(t, zstd, "-q", "-d", filepath.Join(dir, p.Root.Name), "-o", out)
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(src.Root)
	if !bytes.Equal(a, b) {
		t.Error("zstd -d of the root differs from the root")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same inputs give the same bytes: make repro compares payloads like any other output.
func TestDeterministic(t *testing.T) {
	src := sources(t, 2)
	var jsons [][]byte
	for range 2 {
		dir := t.TempDir()
		if _, err := Write(dir, head(), src); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		jsons = append(jsons, b)
	}
	if !bytes.Equal(jsons[0], jsons[1]) {
		t.Errorf("two payloads of the same inputs differ:\n%s\n%s", jsons[0], jsons[1])
	}
}

func TestReadRefuses(t *testing.T) {
	src := sources(t, 3)
	cases := []struct {
		name string
		edit func(t *testing.T, dir string, p contract.Payload)
		want string
	}{
		{"flipped byte", func(t *testing.T, dir string, p contract.Payload) {
			path := filepath.Join(dir, p.Verity.Name)
			b, _ := os.ReadFile(path)
			b[len(b)/2] ^= 0x40
			os.WriteFile(path, b, 0o644)
		}, "verity: "},
		{"appended byte", func(t *testing.T, dir string, p contract.Payload) {
			f, _ := os.OpenFile(filepath.Join(dir, p.UKI["b"].Name), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{0})
			f.Close()
		}, "uki-b: "},
		{"missing file", func(t *testing.T, dir string, p contract.Payload) { os.Remove(filepath.Join(dir, p.Root.Name)) }, "root: "},
		{"files swapped", func(t *testing.T, dir string, p contract.Payload) {
			p.UKI["a"], p.UKI["b"] = p.UKI["b"], p.UKI["a"]
			os.WriteFile(filepath.Join(dir, FileName), mustJSON(t, p), 0o644)
		}, "uki-a: file"},
		{"wrong raw size", func(t *testing.T, dir string, p contract.Payload) {
			p.Root.RawSize++
			os.WriteFile(filepath.Join(dir, FileName), mustJSON(t, p), 0o644)
		}, "decompressed size"},
		{"tree does not cover the root", func(t *testing.T, dir string, p contract.Payload) {
			p.VerityBlocks = 7
			os.WriteFile(filepath.Join(dir, FileName), mustJSON(t, p), 0o644)
		}, "verity_blocks 7"},
		{"bad version", func(t *testing.T, dir string, p contract.Payload) {
			p.Version = "1.0+3"
			os.WriteFile(filepath.Join(dir, FileName), mustJSON(t, p), 0o644)
		}, `version "1.0+3"`},
		{"one UKI", func(t *testing.T, dir string, p contract.Payload) {
			delete(p.UKI, "b")
			os.WriteFile(filepath.Join(dir, FileName), mustJSON(t, p), 0o644)
		}, "no UKI for slot b"},
		{"unknown field", func(t *testing.T, dir string, p contract.Payload) {
			b := mustJSON(t, p)
			os.WriteFile(filepath.Join(dir, FileName), append([]byte(`{"extra":1,`), b[1:]...), 0o644)
		}, `unknown field "extra"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := Write(dir, head(), src)
			if err != nil {
				t.Fatal(err)
			}
			c.edit(t, dir, p)
			if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Read: %v, want %q", err, c.want)
			}
		})
	}
}
