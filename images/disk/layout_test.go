package disk

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

const mib = 1 << 20

var testHash, _ = hex.DecodeString("0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210")

func mustUUID(t *testing.T, n contract.PartitionName) contract.UUID {
	t.Helper()
	u, err := contract.PartitionUUID(n, "qemu", testHash)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The DPS type GUIDs are spelled out here rather than taken from contract, so that a change there
// that would move amd64's bytes fails this test.
func TestPlan(t *testing.T) {
	for _, tt := range []struct {
		arch             contract.Arch
		root, rootVerity string
	}{
		{contract.AMD64, "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5"},
		{contract.ARM64, "b921b045-1df0-41c3-af44-4c6f280d3fae", "df3300ce-d69f-4c92-978c-9bfb0f38d820"},
		// uname's spelling names the same architecture.
		{"aarch64", "b921b045-1df0-41c3-af44-4c6f280d3fae", "df3300ce-d69f-4c92-978c-9bfb0f38d820"},
	} {
		t.Run(string(tt.arch), func(t *testing.T) { testPlan(t, tt.arch, tt.root, tt.rootVerity) })
	}
}

func testPlan(t *testing.T, arch contract.Arch, rootType, verityType string) {
	l, err := Plan(arch, Sizes{ESP: 64 * mib, Root: 256 * mib, Verity: 8 * mib, Data: 32 * mib}, "qemu", testHash)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := contract.ParseArch(string(arch)); l.Arch != want {
		t.Errorf("layout arch = %q, want %q", l.Arch, want)
	}
	want := []Partition{
		{Name: "esp", Type: TypeESP, UUID: mustUUID(t, "esp"), Offset: 1 * mib, Size: 64 * mib},
		{Name: "root-a", Type: rootType, UUID: mustUUID(t, "root-a"), Offset: 65 * mib, Size: 256 * mib},
		{Name: "verity-a", Type: verityType, UUID: mustUUID(t, "verity-a"), Offset: 321 * mib, Size: 8 * mib, Attributes: AttrReadOnly},
		{Name: "root-b", Type: rootType, UUID: mustUUID(t, "root-b"), Offset: 329 * mib, Size: 256 * mib},
		{Name: "verity-b", Type: verityType, UUID: mustUUID(t, "verity-b"), Offset: 585 * mib, Size: 8 * mib, Attributes: AttrReadOnly},
		{Name: "data", Type: TypeLinuxGeneric, UUID: mustUUID(t, "data"), Offset: 593 * mib, Size: 32 * mib},
	}
	if len(l.Partitions) != len(want) {
		t.Fatalf("%d partitions, want %d", len(l.Partitions), len(want))
	}
	for i, p := range l.Partitions {
		if p != want[i] {
			t.Errorf("partition %d = %+v\nwant %+v", i+1, p, want[i])
		}
	}
	// root-a and verity-a carry the root hash itself, as systemd looks them up.
	if l.Partitions[1].UUID.String() != "01234567-89ab-cdef-0123-456789abcdef" || l.Partitions[2].UUID.String() != "fedcba98-7654-3210-fedc-ba9876543210" {
		t.Errorf("root/verity UUIDs %s %s are not the halves of the root hash", l.Partitions[1].UUID, l.Partitions[2].UUID)
	}
	// 1 MiB head, 624 MiB of partitions, at least 1 MiB of tail: 626 MiB, rounded up to the 630 MiB
	// (10 × 63 MiB) that a VHD's geometry (16 heads × 63 sectors) describes exactly.
	if l.Size != 630*mib {
		t.Errorf("disk size = %d MiB, want 630", l.Size/mib)
	}
	if l.DiskGUID != contract.DiskUUID("qemu") {
		t.Errorf("disk GUID = %s", l.DiskGUID)
	}
	if got, err := l.UUID(contract.PartVerityA); err != nil || got != want[2].UUID {
		t.Errorf("UUID(verity-a) = %s, %v", got, err)
	}
	// A typo is an error at build time, never an empty UUID on the command line.
	if got, err := l.UUID("root_a"); err == nil || !strings.Contains(err.Error(), `unknown partition "root_a"`) {
		t.Errorf("UUID(root_a) = %s, %v; want an error naming it", got, err)
	}
	short := l
	short.Partitions = l.Partitions[:5]
	if _, err := short.UUID(contract.PartData); err == nil || !strings.Contains(err.Error(), "no partition data") {
		t.Errorf("UUID of a partition the layout lacks: %v", err)
	}
}

// Every version of a variant names the same disk, ESP, data partition and empty slot B; only slot
// A's partitions follow the root it holds. Another variant names everything differently.
func TestPlanAcrossVersions(t *testing.T) {
	sizes := Sizes{ESP: 64 * mib, Root: 64 * mib, Verity: mib, Data: mib}
	v2Hash, _ := hex.DecodeString("ffeeddccbbaa99887766554433221100000102030405060708090a0b0c0d0e0f")
	v1, err := Plan(contract.AMD64, sizes, "qemu", testHash)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Plan(contract.AMD64, sizes, "qemu", v2Hash)
	if err != nil {
		t.Fatal(err)
	}
	prod, err := Plan(contract.AMD64, sizes, "qemu-prod", testHash)
	if err != nil {
		t.Fatal(err)
	}
	if v1.DiskGUID != v2.DiskGUID || v1.DiskGUID == prod.DiskGUID {
		t.Errorf("disk GUIDs: v1 %s, v2 %s, qemu-prod %s", v1.DiskGUID, v2.DiskGUID, prod.DiskGUID)
	}
	for i, p := range v1.Partitions {
		slotA := p.Name == contract.PartRootA || p.Name == contract.PartVerityA
		if same := p.UUID == v2.Partitions[i].UUID; same == slotA {
			t.Errorf("%s: v1 %s, v2 %s: want slot A's to differ and the others to match", p.Name, p.UUID, v2.Partitions[i].UUID)
		}
		if same := p.UUID == prod.Partitions[i].UUID; same != slotA {
			t.Errorf("%s: qemu %s, qemu-prod %s: want only slot A's to match (same root hash)", p.Name, p.UUID, prod.Partitions[i].UUID)
		}
	}
}

func TestPlanErrors(t *testing.T) {
	ok := Sizes{ESP: mib, Root: mib, Verity: mib, Data: mib}
	tests := []struct {
		name    string
		arch    contract.Arch
		sizes   Sizes
		variant string
		hash    []byte
		wantErr string
	}{
		{"unaligned size", contract.AMD64, Sizes{ESP: 64*mib + 512, Root: mib, Verity: mib, Data: mib}, "qemu", testHash, "partition esp: size"},
		{"zero data", contract.AMD64, Sizes{ESP: mib, Root: mib, Verity: mib}, "qemu", testHash, "partition data: size 0"},
		{"short hash", contract.AMD64, ok, "qemu", []byte{1, 2, 3}, "root hash is 3 bytes"},
		{"no variant", contract.AMD64, ok, "", testHash, "no variant name"},
		{"unknown arch", "riscv64", ok, "qemu", testHash, `architecture "riscv64"`},
		{"no arch", "", ok, "qemu", testHash, `architecture ""`},
	}
	for _, tt := range tests {
		if _, err := Plan(tt.arch, tt.sizes, tt.variant, tt.hash); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Plan error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestValidate(t *testing.T) {
	good, err := Plan(contract.AMD64, Sizes{ESP: 64 * mib, Root: 64 * mib, Verity: mib, Data: mib}, "qemu", testHash)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*Layout)
		wantErr string
	}{
		{"duplicate UUID", func(l *Layout) { l.Partitions[3].UUID = l.Partitions[1].UUID }, "also used by partition root-a"},
		{"disk GUID reused", func(l *Layout) { l.Partitions[5].UUID = l.DiskGUID }, "also used by disk GUID"},
		{"zero UUID", func(l *Layout) { l.Partitions[5].UUID = contract.UUID{} }, "all zeros"},
		{"unknown name", func(l *Layout) { l.Partitions[0].Name = "swap" }, `unknown partition "swap"`},
		{"bad type", func(l *Layout) { l.Partitions[0].Type = "efi" }, "partition esp type"},
	}
	for _, tt := range tests {
		l := good
		l.Partitions = append([]Partition(nil), good.Partitions...)
		tt.edit(&l)
		if err := l.validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: validate = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestManifestJSON(t *testing.T) {
	l, err := Plan(contract.AMD64, Sizes{ESP: 64 * mib, Root: 64 * mib, Verity: mib, Data: mib}, "qemu", testHash)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(l.Manifest())
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 6 {
		t.Fatalf("manifest has %d partitions", len(back))
	}
	first := back[0]
	for key, want := range map[string]any{"name": "esp", "type_guid": TypeESP, "uuid": mustUUID(t, "esp").String(), "offset": float64(mib), "size": float64(64 * mib)} {
		if first[key] != want {
			t.Errorf("manifest[0][%q] = %v, want %v", key, first[key], want)
		}
	}
	if len(first) != 5 {
		t.Errorf("manifest entry has fields %v, want name, type_guid, uuid, offset, size", first)
	}
}
