package contract

import (
	"strings"
	"testing"
)

func TestParseBoot(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	good := "console=ttyS0 roothash=" + hash + " ballast.slot=a ballast.root=11111111-2222-4333-8444-555555555555" +
		" ballast.verity=21111111-2222-4333-8444-555555555555 ballast.verity.blocks=4096 ballast.verity.salt=00ff" +
		" ballast.data=31111111-2222-4333-8444-555555555555 quiet"
	cases := []struct {
		name, cmdline, err string
	}{
		{"good", good, ""},
		{"upper-case uuid ok", strings.Replace(good, "ballast.root=11111111", "ballast.root=1111111A", 1), ""},
		{"quoted value ok", strings.Replace(good, "ballast.slot=a", `ballast.slot="a"`, 1), ""},
		{"no roothash", strings.Replace(good, "roothash=", "x=", 1), "roothash= missing"},
		{"short roothash", strings.Replace(good, hash, "abcd", 1), "not a sha256"},
		{"bad uuid", strings.Replace(good, "ballast.data=31111111", "ballast.data=zz", 1), `ballast.data="zz`},
		{"zero uuid", strings.Replace(good, "ballast.data=31111111-2222-4333-8444-555555555555", "ballast.data=00000000-0000-0000-0000-000000000000", 1), "ballast.data is the zero UUID"},
		{"bad slot", strings.Replace(good, "ballast.slot=a", "ballast.slot=c", 1), "ballast.slot"},
		{"no blocks", strings.Replace(good, "ballast.verity.blocks=4096", "", 1), "ballast.verity.blocks= missing"},
		{"zero blocks", strings.Replace(good, "ballast.verity.blocks=4096", "ballast.verity.blocks=0", 1), "ballast.verity.blocks must be positive"},
		{"odd salt", strings.Replace(good, "salt=00ff", "salt=0ff", 1), "ballast.verity.salt"},
	}
	for _, c := range cases {
		b, err := ParseBoot(ParseCmdline(c.cmdline))
		if c.err == "" {
			if err != nil || b.VerityBlocks != 4096 || b.Slot != SlotA || b.RootHash != hash || b.Root.String() != "11111111-2222-4333-8444-555555555555" && b.Root.String() != "1111111a-2222-4333-8444-555555555555" {
				t.Errorf("%s: %+v %v", c.name, b, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.err)
		}
	}
}

// The builder writes Boot.Params, the initramfs reads them with ParseBoot: the two must agree.
func TestBootRoundTrip(t *testing.T) {
	hash := make([]byte, 32)
	for i := range hash {
		hash[i] = byte(i * 7)
	}
	root, verity, _ := SlotUUIDs(hash)
	data, _ := PartitionUUID(PartData, "qemu", hash)
	b := Boot{RootHash: "00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9", Slot: SlotA,
		Root: root, Verity: verity, Data: data, VerityBlocks: 20480, VeritySalt: "c0ffee"}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	line := append(Cmdline{KV("console", "ttyS0"), Flag("quiet")}, b.Params()...)
	text, err := line.Format()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseBoot(ParseCmdline(text))
	if err != nil {
		t.Fatal(err)
	}
	if got != b {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
	}
}
