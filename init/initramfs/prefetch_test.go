package initramfs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestBootPrograms(t *testing.T) {
	tests := []struct {
		services []string
		want     []string
		not      []string
	}{
		{nil, []string{contract.SystemInitPath, contract.ModprobePath}, []string{"/usr/bin/apiserver", "/usr/bin/apiclient"}},
		{[]string{"apiserver", "network"}, []string{contract.SystemInitPath, "/usr/bin/apiserver", "/usr/bin/netconf"}, []string{"/usr/bin/apiclient", "/usr/bin/timesync"}},
	}
	for _, tc := range tests {
		got := bootPrograms(contract.Image{Services: tc.services})
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("services %v: %v lacks %s", tc.services, got, w)
			}
		}
		for _, n := range tc.not {
			if slices.Contains(got, n) {
				t.Errorf("services %v: %v has %s, which the boot does not run", tc.services, got, n)
			}
		}
	}
}

func TestPrefetch(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/a"), make([]byte, 3<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	// A missing program is skipped: its exec reports it.
	if got := prefetch(root, []string{"/usr/bin/a", "/usr/bin/missing"}); got != 3<<20 {
		t.Errorf("prefetch = %d bytes, want %d", got, 3<<20)
	}
}
