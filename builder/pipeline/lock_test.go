package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/builder/variant"
	"github.com/ballast-os/ballast/contract"
)

func TestLockWanted(t *testing.T) {
	n := 0
	v := func(archs []string, kernel string, debs ...string) *variant.Variant {
		t.Helper()
		n++
		text := fmt.Sprintf(`name = "v%d"
dev = true
[kernel]
package = %q
initramfs-modules = ["virtio_blk"]
[packages]
debian = %s
[partitions]
esp = "64MiB"
root = "128MiB"
verity = "8MiB"
data = "128MiB"
[output]
formats = ["raw"]
`, n, kernel, quoteList(debs))
		if archs != nil {
			text = "arch = " + quoteList(archs) + "\n" + text
		}
		vt, err := variant.Parse(fmt.Sprintf("v%d.toml", n), []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return vt
	}
	both := []string{"amd64", "arm64"}
	cases := []struct {
		name     string
		variants []*variant.Variant
		want     map[contract.Arch]string
	}{
		{
			name: "cloud and metal kernels on both",
			variants: []*variant.Variant{
				v(both, "linux-image-6.1.0-50-cloud-{arch}", "e2fsprogs", "nftables"),
				v(both, "linux-image-6.1.0-50-{arch}", "busybox-static", "e2fsprogs"),
			},
			want: map[contract.Arch]string{
				contract.AMD64: "[busybox-static e2fsprogs linux-image-6.1.0-50-amd64 linux-image-6.1.0-50-cloud-amd64 nftables systemd-boot-efi]",
				contract.ARM64: "[busybox-static e2fsprogs linux-image-6.1.0-50-arm64 linux-image-6.1.0-50-cloud-arm64 nftables systemd-boot-efi]",
			},
		},
		{
			// A variant without arch is amd64's alone; its packages are not pinned for arm64.
			name: "one variant amd64 only",
			variants: []*variant.Variant{
				v(nil, "linux-image-6.1.0-50-cloud-amd64", "nftables"),
				v([]string{"arm64"}, "linux-image-6.1.0-50-{arch}", "e2fsprogs"),
			},
			want: map[contract.Arch]string{
				contract.AMD64: "[linux-image-6.1.0-50-cloud-amd64 nftables systemd-boot-efi]",
				contract.ARM64: "[e2fsprogs linux-image-6.1.0-50-arm64 systemd-boot-efi]",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := lockWanted(c.variants)
			if err != nil {
				t.Fatal(err)
			}
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

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
