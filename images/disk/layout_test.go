package disk

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const mib = 1 << 20

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRootUUIDs(t *testing.T) {
	tests := []struct {
		hash, root, verity, wantErr string
	}{
		{
			// Nibbles that v4 forcing would change ("c" at the version
			// position, "0" at the variant) must come through untouched.
			hash:   "0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210",
			root:   "01234567-89ab-cdef-0123-456789abcdef",
			verity: "fedcba98-7654-3210-fedc-ba9876543210",
		},
		{
			// A longer hash (sha512) uses its first and last 16 bytes.
			hash:   strings.Repeat("11", 16) + strings.Repeat("00", 32) + strings.Repeat("22", 16),
			root:   "11111111-1111-1111-1111-111111111111",
			verity: "22222222-2222-2222-2222-222222222222",
		},
		{hash: strings.Repeat("ab", 31), wantErr: "31 bytes"},
	}
	for _, tt := range tests {
		root, verity, err := RootUUIDs(mustHex(t, tt.hash))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RootUUIDs(%s) error = %v, want %q", tt.hash, err, tt.wantErr)
			}
			continue
		}
		if err != nil || root != tt.root || verity != tt.verity {
			t.Errorf("RootUUIDs(%s) = %s, %s, %v; want %s, %s", tt.hash, root, verity, err, tt.root, tt.verity)
		}
	}
}

func TestDeriveUUID(t *testing.T) {
	hash := mustHex(t, "0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210")
	seen := map[string]string{}
	for _, name := range []string{"disk", NameESP, NameRootB, NameVerityB, NameData} {
		u := DeriveUUID(name, hash)
		if _, err := parseUUID(u); err != nil {
			t.Fatalf("DeriveUUID(%s) = %q: %v", name, u, err)
		}
		if u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Errorf("DeriveUUID(%s) = %s lacks the v4 version or RFC 4122 variant", name, u)
		}
		if u != strings.ToLower(u) {
			t.Errorf("DeriveUUID(%s) = %s is not lower case", name, u)
		}
		if other, dup := seen[u]; dup {
			t.Errorf("DeriveUUID gives %s for both %s and %s", u, name, other)
		}
		seen[u] = name
		if again := DeriveUUID(name, hash); again != u {
			t.Errorf("DeriveUUID(%s) not stable: %s then %s", name, u, again)
		}
	}
	// Pinned (checked with: printf 'ballast:disk:<hex>' | sha256sum, then the
	// version nibble set to 4): changing the derivation changes every image's UUIDs.
	if got, want := DeriveUUID("disk", hash), "73fe21a9-eb71-487c-9b64-e1cf92ff6cbe"; got != want {
		t.Errorf("DeriveUUID(disk) = %s, want %s", got, want)
	}
}

func testUUIDs(t *testing.T) UUIDs {
	t.Helper()
	ids, err := UUIDsFor(mustHex(t, "0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestPlan(t *testing.T) {
	ids := testUUIDs(t)
	l, err := PlanUUIDs(Sizes{ESP: 64 * mib, Root: 256 * mib, Verity: 8 * mib, Data: 32 * mib}, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Name: "esp", Type: TypeESP, UUID: ids.ESP, Offset: 1 * mib, Size: 64 * mib},
		{Name: "root-a", Type: TypeRootX86_64, UUID: "01234567-89ab-cdef-0123-456789abcdef", Offset: 65 * mib, Size: 256 * mib},
		{Name: "verity-a", Type: TypeRootVerityX86_64, UUID: "fedcba98-7654-3210-fedc-ba9876543210", Offset: 321 * mib, Size: 8 * mib, Attributes: AttrReadOnly},
		{Name: "root-b", Type: TypeRootX86_64, UUID: ids.RootB, Offset: 329 * mib, Size: 256 * mib},
		{Name: "verity-b", Type: TypeRootVerityX86_64, UUID: ids.VerityB, Offset: 585 * mib, Size: 8 * mib, Attributes: AttrReadOnly},
		{Name: "data", Type: TypeLinuxGeneric, UUID: ids.Data, Offset: 593 * mib, Size: 32 * mib},
	}
	if len(l.Partitions) != len(want) {
		t.Fatalf("%d partitions, want %d", len(l.Partitions), len(want))
	}
	for i, p := range l.Partitions {
		if p != want[i] {
			t.Errorf("partition %d = %+v\nwant %+v", i+1, p, want[i])
		}
		if p.Offset%mib != 0 {
			t.Errorf("partition %s at %d is not 1 MiB aligned", p.Name, p.Offset)
		}
	}
	if l.Size != 626*mib {
		t.Errorf("disk size = %d, want %d", l.Size, 626*mib)
	}
	if l.DiskGUID != ids.Disk {
		t.Errorf("disk GUID = %s, want %s", l.DiskGUID, ids.Disk)
	}
	if err := l.validate(); err != nil {
		t.Errorf("planned layout does not validate: %v", err)
	}
	if got := l.UUID(NameVerityA); got != want[2].UUID {
		t.Errorf("UUID(verity-a) = %q, want %q", got, want[2].UUID)
	}
	if got := l.UUID("swap"); got != "" {
		t.Errorf("UUID(swap) = %q, want empty", got)
	}
	// Plan from the root hash gives the same layout.
	fromHash, err := Plan(Sizes{ESP: 64 * mib, Root: 256 * mib, Verity: 8 * mib, Data: 32 * mib},
		mustHex(t, "0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fromHash) != fmt.Sprint(l) {
		t.Errorf("Plan(rootHash) = %+v\nwant %+v", fromHash, l)
	}
	if _, err := Plan(Sizes{ESP: mib, Root: mib, Verity: mib, Data: mib}, []byte{1, 2, 3}); err == nil {
		t.Error("Plan accepted a 3-byte root hash")
	}
}

func TestPlanErrors(t *testing.T) {
	good := Sizes{ESP: 64 * mib, Root: 64 * mib, Verity: mib, Data: mib}
	ids := testUUIDs(t)
	tests := []struct {
		name    string
		sizes   Sizes
		ids     func(UUIDs) UUIDs
		wantErr string
	}{
		{"unaligned size", Sizes{ESP: 64*mib + 512, Root: mib, Verity: mib, Data: mib}, nil, "partition esp: size"},
		{"zero data", Sizes{ESP: mib, Root: mib, Verity: mib}, nil, "partition data: size 0"},
		{"duplicate UUID", good, func(u UUIDs) UUIDs { u.RootB = u.RootA; return u }, "also used by partition root-a"},
		{"disk GUID reused", good, func(u UUIDs) UUIDs { u.Data = u.Disk; return u }, "also used by disk GUID"},
		{"malformed UUID", good, func(u UUIDs) UUIDs { u.ESP = "not-a-uuid"; return u }, "partition esp: UUID"},
		{"zero UUID", good, func(u UUIDs) UUIDs { u.Data = "00000000-0000-0000-0000-000000000000"; return u }, "all zeros"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := ids
			if tt.ids != nil {
				u = tt.ids(u)
			}
			_, err := PlanUUIDs(tt.sizes, u)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Plan error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestManifestJSON(t *testing.T) {
	l, err := PlanUUIDs(Sizes{ESP: 64 * mib, Root: 64 * mib, Verity: mib, Data: mib}, testUUIDs(t))
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
	for key, want := range map[string]any{"name": "esp", "type_guid": TypeESP, "offset": float64(mib), "size": float64(64 * mib)} {
		if first[key] != want {
			t.Errorf("manifest[0][%q] = %v, want %v", key, first[key], want)
		}
	}
	if len(first) != 5 {
		t.Errorf("manifest entry has fields %v, want name, type_guid, uuid, offset, size", first)
	}
}
