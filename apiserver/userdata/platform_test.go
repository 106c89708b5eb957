package userdata

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOnEC2(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"qemu", map[string]string{"class/dmi/id/sys_vendor": "QEMU\n"}, false},
		{"nitro", map[string]string{"class/dmi/id/sys_vendor": "Amazon EC2\n"}, true},
		{"xen by product uuid", map[string]string{"class/dmi/id/sys_vendor": "Xen\n", "class/dmi/id/product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF\n"}, true},
		{"xen by hypervisor uuid", map[string]string{"hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef\n"}, true},
		{"other xen", map[string]string{"hypervisor/uuid": "4b8d0f2c-0000-0000-0000-000000000000\n"}, false},
		{"nothing readable", nil, false},
	}
	for _, tt := range tests {
		sys := t.TempDir()
		for p, c := range tt.files {
			os.MkdirAll(filepath.Join(sys, filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Join(sys, p), []byte(c), 0o644)
		}
		if got := OnEC2(sys); got != tt.want {
			t.Errorf("%s: OnEC2 = %v, want %v", tt.name, got, tt.want)
		}
	}
}
