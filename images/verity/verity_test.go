package verity

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

var testUUID = [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}

func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func TestHashSize(t *testing.T) {
	const b = 4096
	tests := []struct {
		blocks int64
		p      Params
		want   int64
	}{
		{1, Params{}, b}, // the root is the data block's hash: superblock only
		{2, Params{}, 2 * b},
		{127, Params{}, 2 * b},
		{128, Params{}, 2 * b},
		{129, Params{}, (1 + 2 + 1) * b},
		{128 * 128, Params{}, (1 + 128 + 1) * b},
		{128*128 + 1, Params{}, (1 + 129 + 2 + 1) * b},
		// 16 digests a hash block: 300 -> 19 -> 2 -> 1, after a superblock of one 512-byte block.
		{300, Params{HashBlockSize: 512}, (1 + 19 + 2 + 1) * 512},
		// The superblock still takes a whole hash block when blocks are larger.
		{1, Params{DataBlockSize: 512, HashBlockSize: 1024}, 1024},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.blocks, "/", tt.p.HashBlockSize), func(t *testing.T) {
			dbs := int64(tt.p.DataBlockSize)
			if dbs == 0 {
				dbs = b
			}
			got, err := HashSize(tt.blocks*dbs, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("HashSize(%d blocks) = %d, want %d", tt.blocks, got, tt.want)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	tests := []struct {
		name     string
		dataSize int64
		p        Params
		want     string
	}{
		{"empty", 0, Params{}, "data size 0"},
		{"negative", -4096, Params{}, "data size -4096"},
		{"unaligned", 4097, Params{}, "data size 4097 is not a multiple of the 4096-byte"},
		{"unaligned to custom block", 4096 + 512, Params{DataBlockSize: 1024}, "data size 4608 is not a multiple of the 1024-byte"},
		{"odd block size", 4096, Params{DataBlockSize: 1000}, "data block size 1000"},
		{"tiny hash block", 4096, Params{HashBlockSize: 256}, "hash block size 256"},
		{"huge block", 1 << 20, Params{DataBlockSize: 1 << 20}, "data block size 1048576"},
		{"long salt", 4096, Params{Salt: make([]byte, 257)}, "salt of 257 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := HashSize(tt.dataSize, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("HashSize: error %v, want one containing %q", err, tt.want)
			}
			data := bytes.NewReader(make([]byte, max(0, tt.dataSize)))
			_, err = Build(data, tt.dataSize, &memWriterAt{}, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSuperblock(t *testing.T) {
	salt := []byte{0xaa, 0xbb, 0xcc}
	var out memWriterAt
	res, err := Build(bytes.NewReader(make([]byte, 3*4096)), 3*4096, &out, Params{Salt: salt, UUID: testUUID})
	if err != nil {
		t.Fatal(err)
	}
	sb := out.b[:512]
	le := binary.LittleEndian
	checks := []struct {
		field     string
		got, want any
	}{
		{"signature", string(sb[0:8]), "verity\x00\x00"},
		{"version", le.Uint32(sb[8:]), uint32(1)},
		{"hash_type", le.Uint32(sb[12:]), uint32(1)},
		{"uuid", [16]byte(sb[16:32]), testUUID},
		{"algorithm", string(bytes.TrimRight(sb[32:64], "\x00")), "sha256"},
		{"data_block_size", le.Uint32(sb[64:]), uint32(4096)},
		{"hash_block_size", le.Uint32(sb[68:]), uint32(4096)},
		{"data_blocks", le.Uint64(sb[72:]), uint64(3)},
		{"salt_size", le.Uint16(sb[80:]), uint16(3)},
		{"salt", string(sb[88:91]), string(salt)},
		{"result blocks", res.DataBlocks, uint64(3)},
		{"result size", res.HashSize, int64(len(out.b))},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if !bytes.Equal(out.b[512:4096], make([]byte, 4096-512)) {
		t.Error("superblock padding is not zero")
	}
}

func TestReadErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		data   io.ReaderAt
		size   int64
		target error
	}{
		{"short data", bytes.NewReader(make([]byte, 3*4096)), 4 * 4096, io.ErrUnexpectedEOF},
		{"failing reader", failingReaderAt{boom}, 1000 * 4096, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.data, tt.size, &memWriterAt{}, Params{})
			if !errors.Is(err, tt.target) || !strings.Contains(err.Error(), "verity: read data blocks") {
				t.Errorf("error %v, want one wrapping %v and naming the data blocks", err, tt.target)
			}
		})
	}
	_, err := Build(bytes.NewReader(make([]byte, 4096)), 4096, failingWriterAt{boom}, Params{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "superblock") {
		t.Errorf("write error %v, want one wrapping boom and naming the superblock", err)
	}
}

// TestVeritysetup checks Build against the reference implementation: the same hash device byte
// for byte, the same root hash, and `veritysetup verify` accepting it.
func TestVeritysetup(t *testing.T) {
	testutil.Tool(t, "veritysetup", "cryptsetup-bin")
	tests := []struct {
		blocks int
		p      Params
	}{
		{1, Params{Salt: randomBytes(1, 32)}},
		{127, Params{Salt: randomBytes(2, 32)}},
		{128, Params{Salt: randomBytes(3, 32)}},
		{129, Params{Salt: randomBytes(4, 32)}},
		{1024, Params{Salt: randomBytes(5, 32)}},                                           // 4 MiB
		{128*128 + 1, Params{Salt: randomBytes(6, 32)}},                                    // three levels
		{300, Params{Salt: randomBytes(7, 7)}},                                             // salt shorter than a digest
		{300, Params{}},                                                                    // no salt
		{300, Params{Salt: randomBytes(8, 256)}},                                           // longest salt
		{300, Params{Salt: randomBytes(9, 32), HashBlockSize: 512}},                        // three levels, small
		{2000, Params{Salt: randomBytes(10, 32), DataBlockSize: 512, HashBlockSize: 1024}}, // unequal sizes
	}
	for i, tt := range tests {
		dbs := tt.p.DataBlockSize
		if dbs == 0 {
			dbs = DefaultBlockSize
		}
		t.Run(fmt.Sprintf("%dx%d/salt%d/hash%d", tt.blocks, dbs, len(tt.p.Salt), tt.p.HashBlockSize), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dataPath := filepath.Join(dir, "data")
			data := randomBytes(uint64(100+i), tt.blocks*dbs)
			if err := os.WriteFile(dataPath, data, 0o600); err != nil {
				t.Fatal(err)
			}
			p := tt.p
			p.UUID = testUUID
			ours := buildFile(t, dataPath, filepath.Join(dir, "ours"), p)

			refPath := filepath.Join(dir, "ref")
			args := []string{"format", "--uuid=" + uuidString(p.UUID), "--salt=" + saltArg(p.Salt)}
			if p.DataBlockSize != 0 {
				args = append(args, "--data-block-size="+strconv.Itoa(p.DataBlockSize))
			}
			if p.HashBlockSize != 0 {
				args = append(args, "--hash-block-size="+strconv.Itoa(p.HashBlockSize))
			}
			out := testutil.Run(t, "veritysetup", append(args, dataPath, refPath)...)
			m := regexp.MustCompile(`(?m)^Root hash:\s+([0-9a-f]+)$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no root hash in veritysetup output:\n%s", out)
			}
			if got := hex.EncodeToString(ours.RootHash); got != m[1] {
				t.Errorf("root hash %s, veritysetup says %s", got, m[1])
			}
			ourBytes, err := os.ReadFile(filepath.Join(dir, "ours"))
			if err != nil {
				t.Fatal(err)
			}
			refBytes, err := os.ReadFile(refPath)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(ourBytes)) != ours.HashSize {
				t.Errorf("wrote %d bytes, Result.HashSize says %d", len(ourBytes), ours.HashSize)
			}
			if want, _ := HashSize(int64(len(data)), p); want != ours.HashSize {
				t.Errorf("HashSize = %d, Build wrote %d", want, ours.HashSize)
			}
			if !bytes.Equal(ourBytes, refBytes) {
				t.Errorf("hash device differs from veritysetup's (%d vs %d bytes) first at byte %d",
					len(ourBytes), len(refBytes), firstDiff(ourBytes, refBytes))
			}
			testutil.Run(t, "veritysetup", "verify", dataPath, filepath.Join(dir, "ours"), hex.EncodeToString(ours.RootHash))
		})
	}
}

// TestVeritysetupDetectsCorruption makes sure the cross-check above can fail: one flipped data
// byte must make `veritysetup verify` reject our tree.
func TestVeritysetupDetectsCorruption(t *testing.T) {
	veritysetup := testutil.Tool(t, "veritysetup", "cryptsetup-bin")
	dir := t.TempDir()
	dataPath := filepath.Join(dir, "data")
	data := randomBytes(42, 200*4096)
	if err := os.WriteFile(dataPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res := buildFile(t, dataPath, filepath.Join(dir, "hash"), Params{Salt: NewSalt(), UUID: testUUID})
	data[150*4096+7] ^= 1
	if err := os.WriteFile(dataPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(veritysetup, "verify", dataPath, filepath.Join(dir, "hash"), hex.EncodeToString(res.RootHash))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("veritysetup verify accepted corrupted data:\n%s", out)
	}
}

func TestNewSalt(t *testing.T) {
	a, b := NewSalt(), NewSalt()
	if len(a) != SaltSize || bytes.Equal(a, b) {
		t.Errorf("NewSalt gave %x and %x; want two different %d-byte salts", a, b, SaltSize)
	}
}

func BenchmarkBuild(b *testing.B) {
	const size = 64 << 20
	data := bytes.NewReader(randomBytes(1, size))
	p := Params{Salt: randomBytes(2, 32)}
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Build(data, size, discardWriterAt{}, p); err != nil {
			b.Fatal(err)
		}
	}
}

func buildFile(t *testing.T, dataPath, hashPath string, p Params) Result {
	t.Helper()
	data, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	st, err := data.Stat()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := os.Create(hashPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Build(data, st.Size(), hash, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := hash.Close(); err != nil {
		t.Fatal(err)
	}
	return res
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func saltArg(salt []byte) string {
	if len(salt) == 0 {
		return "-"
	}
	return hex.EncodeToString(salt)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// memWriterAt grows to whatever is written, like a sparse file.
type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

type discardWriterAt struct{}

func (discardWriterAt) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

type failingReaderAt struct{ err error }

func (f failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, f.err }

type failingWriterAt struct{ err error }

func (f failingWriterAt) WriteAt([]byte, int64) (int, error) { return 0, f.err }
