package contract

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestPartitionUUID(t *testing.T) {
	hash, _ := hex.DecodeString("0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210")
	root, err := PartitionUUID(PartRootA, "qemu", hash)
	if err != nil || root.String() != "01234567-89ab-cdef-0123-456789abcdef" {
		t.Errorf("root-a = %s, %v: want the first 128 bits of the hash, raw", root, err)
	}
	verity, err := PartitionUUID(PartVerityA, "qemu", hash)
	if err != nil || verity.String() != "fedcba98-7654-3210-fedc-ba9876543210" {
		t.Errorf("verity-a = %s, %v: want the last 128 bits of the hash, raw", verity, err)
	}
	if r, v, err := SlotUUIDs(hash); err != nil || r != root || v != verity {
		t.Errorf("SlotUUIDs = %s %s %v, want root-a's and verity-a's", r, v, err)
	}
	other, _ := hex.DecodeString("ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100")
	seen := map[UUID]PartitionName{root: PartRootA, verity: PartVerityA}
	for _, n := range []PartitionName{PartESP, PartRootB, PartVerityB, PartData} {
		u, err := PartitionUUID(n, "qemu", hash)
		if err != nil {
			t.Fatal(err)
		}
		if u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Errorf("%s = %s: not a version 4, RFC 4122 UUID", n, u)
		}
		if other, dup := seen[u]; dup {
			t.Errorf("%s and %s share %s", n, other, u)
		}
		seen[u] = n
		// Stable: the same derivation as DerivedUUID with the partition's name and the variant's.
		if u != DerivedUUID(string(n), "qemu") {
			t.Errorf("%s is not DerivedUUID(%q, variant)", n, n)
		}
		// Every version of a variant names the same partition; another variant another one.
		if v2, _ := PartitionUUID(n, "qemu", other); v2 != u {
			t.Errorf("%s changes with the root hash: %s, then %s", n, u, v2)
		}
		if p, _ := PartitionUUID(n, "qemu-prod", hash); p == u {
			t.Errorf("%s is the same for qemu and qemu-prod", n)
		}
	}
	// Pinned (printf 'ballast:<purpose>:qemu' | sha256sum, then the version and variant bits set):
	// changing the derivation changes every image's UUIDs, and a host's data partition with them.
	if got := DiskUUID("qemu").String(); got != "66e92132-ed4a-4a53-b0e9-e1629757b861" {
		t.Errorf("DiskUUID = %s", got)
	}
	if got, _ := PartitionUUID(PartData, "qemu", hash); got.String() != "3c4580f2-0e79-4dae-bd1d-68ddb170f242" {
		t.Errorf("data = %s", got)
	}
	for _, c := range []struct {
		name    PartitionName
		variant string
		hash    []byte
		err     string
	}{
		{"rootfs-a", "qemu", hash, `unknown partition "rootfs-a"`},
		{PartRootA, "qemu", hash[:16], "root hash is 16 bytes"},
		{PartData, "qemu", hash[:16], "root hash is 16 bytes"},
		{PartData, "", hash, "no variant name"},
	} {
		if _, err := PartitionUUID(c.name, c.variant, c.hash); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("PartitionUUID(%s, %q, %d bytes): err %v, want %q", c.name, c.variant, len(c.hash), err, c.err)
		}
	}
	if _, _, err := SlotUUIDs(hash[:31]); err == nil {
		t.Error("SlotUUIDs took a 31-byte hash")
	}
}

func TestUUIDParse(t *testing.T) {
	u, err := ParseUUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	if err != nil || u.String() != "0fc63daf-8483-4772-8e79-3d69d8477de4" {
		t.Errorf("ParseUUID = %s, %v", u, err)
	}
	for _, bad := range []string{"", "0fc63daf84834772-8e79-3d69d8477de4x", "0fc63daf-8483-4772-8e79-3d69d8477dez"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) succeeded", bad)
		}
	}
}

func TestSlots(t *testing.T) {
	if SlotA.Root() != PartRootA || SlotA.Verity() != PartVerityA || SlotB.Root() != PartRootB || SlotB.Verity() != PartVerityB {
		t.Error("slot partitions are mixed up")
	}
	if Slot("c").Validate() == nil {
		t.Error("slot c is valid")
	}
	for _, n := range Partitions() {
		if _, err := ParsePartitionName(string(n)); err != nil {
			t.Error(err)
		}
	}
}
