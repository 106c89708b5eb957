package pipeline

import (
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// The installer's command line is slot A's plus ballast.install, and with a netboot URL the
// source; the words of slot A stay first, so a variant's own words keep their order.
func TestInstallerCmdline(t *testing.T) {
	b := &builder{cmdlines: map[contract.Slot]string{contract.SlotA: "console=ttyS0,115200n8 quiet ballast.slot=a"}}
	for _, tc := range []struct{ source, want string }{
		{"", "console=ttyS0,115200n8 quiet ballast.slot=a ballast.install"},
		{"http://10.0.0.1/metal/install.json", "console=ttyS0,115200n8 quiet ballast.slot=a ballast.install ballast.install.source=http://10.0.0.1/metal/install.json"},
	} {
		if got := b.installerCmdline(tc.source); got != tc.want {
			t.Errorf("installerCmdline(%q) = %q, want %q", tc.source, got, tc.want)
		}
	}
}
