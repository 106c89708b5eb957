package contract

import "testing"

func TestArchNames(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   Arch
		loader string
		stub   string
	}{
		{"amd64", AMD64, "EFI/BOOT/BOOTX64.EFI", "usr/lib/systemd/boot/efi/linuxx64.efi.stub"},
		{"x86_64", AMD64, "EFI/BOOT/BOOTX64.EFI", "usr/lib/systemd/boot/efi/linuxx64.efi.stub"},
		{"arm64", ARM64, "EFI/BOOT/BOOTAA64.EFI", "usr/lib/systemd/boot/efi/linuxaa64.efi.stub"},
		{"aarch64", ARM64, "EFI/BOOT/BOOTAA64.EFI", "usr/lib/systemd/boot/efi/linuxaa64.efi.stub"},
	} {
		a, err := ParseArch(tc.in)
		if err != nil || a != tc.want {
			t.Fatalf("ParseArch(%q) = %q, %v", tc.in, a, err)
		}
		if got := a.ESPLoaderPath(); got != tc.loader {
			t.Errorf("%s loader %q, want %q", a, got, tc.loader)
		}
		if got := a.SystemdStubFile(); got != tc.stub {
			t.Errorf("%s stub %q, want %q", a, got, tc.stub)
		}
	}
	for _, bad := range []string{"", "i386", "AMD64", "riscv64"} {
		if _, err := ParseArch(bad); err == nil {
			t.Errorf("ParseArch(%q) accepted", bad)
		}
	}
	if Arch("").Or() != AMD64 || ARM64.Or() != ARM64 {
		t.Error("Or")
	}
	// The type GUIDs are the DPS ones as sgdisk names them (8304/8305, 830e's verity pair).
	if ARM64.Info().RootType != "b921b045-1df0-41c3-af44-4c6f280d3fae" || AMD64.Info().RootVerityType != "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5" {
		t.Error("DPS type GUIDs")
	}
}
