package initramfs

import (
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	good := "console=ttyS0 roothash=" + hash + " ballast.slot=a ballast.root=11111111-2222-4333-8444-555555555555" +
		" ballast.verity=21111111-2222-4333-8444-555555555555 ballast.verity.blocks=4096 ballast.verity.salt=00ff" +
		" ballast.data=31111111-2222-4333-8444-555555555555 quiet"
	cases := []struct {
		name, cmdline, err string
	}{
		{"good", good, ""},
		{"upper-case uuid ok", strings.Replace(good, "ballast.root=11111111", "ballast.root=1111111A", 1), ""},
		{"no roothash", strings.Replace(good, "roothash=", "x=", 1), "roothash= missing"},
		{"short roothash", strings.Replace(good, hash, "abcd", 1), "not a sha256"},
		{"bad uuid", strings.Replace(good, "ballast.data=31111111", "ballast.data=zz", 1), "ballast.data=\"zz"},
		{"bad slot", strings.Replace(good, "ballast.slot=a", "ballast.slot=c", 1), "ballast.slot"},
		{"no blocks", strings.Replace(good, "ballast.verity.blocks=4096", "", 1), "ballast.verity.blocks"},
		{"odd salt", strings.Replace(good, "salt=00ff", "salt=0ff", 1), "ballast.verity.salt"},
	}
	for _, c := range cases {
		p, err := ParseCmdline(c.cmdline)
		if c.err == "" {
			if err != nil || p.Blocks != 4096 || p.Slot != "a" || p.RootHash != hash {
				t.Errorf("%s: %+v %v", c.name, p, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.err)
		}
	}
}
