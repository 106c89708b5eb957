package contract

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestPartitionUUID(t *testing.T) {
	hash, _ := hex.DecodeString("0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210")
	root, err := PartitionUUID(PartRootA, hash)
	if err != nil || root.String() != "01234567-89ab-cdef-0123-456789abcdef" {
		t.Errorf("root-a = %s, %v: want the first 128 bits of the hash, raw", root, err)
	}
	verity, err := PartitionUUID(PartVerityA, hash)
	if err != nil || verity.String() != "fedcba98-7654-3210-fedc-ba9876543210" {
		t.Errorf("verity-a = %s, %v: want the last 128 bits of the hash, raw", verity, err)
	}
	seen := map[UUID]PartitionName{root: PartRootA, verity: PartVerityA}
	for _, n := range []PartitionName{PartESP, PartRootB, PartVerityB, PartData} {
		u, err := PartitionUUID(n, hash)
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
		// Stable: the same derivation as DerivedUUID with the partition's name.
		if u != DerivedUUID(string(n), hex.EncodeToString(hash)) {
			t.Errorf("%s is not DerivedUUID(%q, hash)", n, n)
		}
	}
	// Pinned (printf 'ballast:disk:<hex>' | sha256sum, then the version nibble set to 4): changing
	// the derivation changes every image's UUIDs.
	if got := DiskUUID(hash).String(); got != "73fe21a9-eb71-487c-9b64-e1cf92ff6cbe" {
		t.Errorf("DiskUUID = %s", got)
	}
	if _, err := PartitionUUID("rootfs-a", hash); err == nil || !strings.Contains(err.Error(), `unknown partition "rootfs-a"`) {
		t.Errorf("an unknown name: err %v", err)
	}
	if _, err := PartitionUUID(PartRootA, hash[:16]); err == nil {
		t.Error("a 16-byte root hash was accepted")
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
