package pipeline

import (
	"fmt"
	"testing"

	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
)

func TestLockWanted(t *testing.T) {
	v := func(kernel string, debs ...string) *variant.Variant {
		return &variant.Variant{Kernel: variant.Kernel{Package: kernel}, Packages: variant.Packages{Debian: debs}}
	}
	cases := []struct {
		name     string
		variants []*variant.Variant
		want     map[contract.Arch]string
	}{
		{
			name: "cloud and metal kernels",
			variants: []*variant.Variant{
				v("linux-image-6.1.0-50-cloud-amd64", "e2fsprogs", "nftables"),
				v("linux-image-6.1.0-50-amd64", "busybox-static", "e2fsprogs"),
			},
			want: map[contract.Arch]string{
				contract.AMD64: "[busybox-static e2fsprogs linux-image-6.1.0-50-amd64 linux-image-6.1.0-50-cloud-amd64 nftables systemd-boot-efi]",
				contract.ARM64: "[busybox-static e2fsprogs linux-image-6.1.0-50-arm64 linux-image-6.1.0-50-cloud-arm64 nftables systemd-boot-efi]",
			},
		},
		{
			// Only a trailing -amd64 names the architecture.
			name:     "kernel without architecture suffix",
			variants: []*variant.Variant{v("linux-image-amd64-custom")},
			want: map[contract.Arch]string{
				contract.AMD64: "[linux-image-amd64-custom systemd-boot-efi]",
				contract.ARM64: "[linux-image-amd64-custom systemd-boot-efi]",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := lockWanted(c.variants)
			if len(got) != len(c.want) {
				t.Errorf("architectures %v, want %v", got, c.want)
			}
			for a, w := range c.want {
				if s := fmt.Sprint(got[a]); s != w {
					t.Errorf("%s: %s, want %s", a, s, w)
				}
			}
		})
	}
}
