package qemu

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestArgs(t *testing.T) {
	// Shared tails of the expected command lines.
	network := []string{
		"-device", "virtio-net-pci,netdev=net0,romfile=",
		"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
		"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
	}
	devices := []string{"-device", "virtio-rng-pci", "-device", "pvpanic-pci", "-action", "panic=exit-failure"}
	cat := func(parts ...[]string) []string { return slices.Concat(parts...) }

	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{
			name: "defaults",
			cfg:  Config{Disk: "/img/disk.raw", Accel: "tcg,thread=multi"},
			want: cat([]string{
				"-nodefaults", "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/OVMF/OVMF_VARS_4M.fd",
				"-drive", "if=none,id=disk0,format=raw,file=/img/disk.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
				"-netdev", "user,id=net0,restrict=on",
			}, network, devices, []string{"-serial", "stdio", "-no-reboot"}),
		},
		{
			name: "entropy-starved: no RDRAND, no virtio-rng",
			cfg:  Config{Disk: "/img/disk.raw", Accel: "tcg,thread=multi", CPU: "qemu64", NoRNG: true, NoNetwork: true},
			want: cat([]string{
				"-nodefaults", "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "qemu64",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/OVMF/OVMF_VARS_4M.fd",
				"-drive", "if=none,id=disk0,format=raw,file=/img/disk.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
			}, devices[2:], []string{"-serial", "stdio", "-no-reboot"}),
		},
		{
			name: "test VM with cidata and forwards",
			cfg: Config{
				Disk:       "/w/disk.qcow2",
				Snapshot:   true,
				ExtraDisks: []string{"/w/cidata.iso", "/w/extra.img"},
				MemoryMB:   2048,
				CPUs:       4,
				Accel:      "kvm",
				OVMFCode:   "/fw/CODE.fd",
				OVMFVars:   "/w/VARS.fd",
				HostFwd:    []string{"tcp:127.0.0.1:50443-:50443", "tcp:127.0.0.1:2222-:22"},
				GuestFwd:   []string{"tcp:10.0.2.100:80-tcp:127.0.0.1:8080"},
				QMPSocket:  "/run/vm/qmp.sock",
			},
			want: cat([]string{
				"-nodefaults", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
				"-smp", "4", "-m", "2048", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
				"-drive", "if=pflash,format=raw,unit=1,file=/w/VARS.fd",
				"-drive", "if=none,id=disk0,format=qcow2,file=/w/disk.qcow2,snapshot=on",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
				"-drive", "if=none,id=disk1,format=raw,readonly=on,file=/w/cidata.iso",
				"-device", "virtio-blk-pci,drive=disk1",
				"-drive", "if=none,id=disk2,format=raw,readonly=on,file=/w/extra.img",
				"-device", "virtio-blk-pci,drive=disk2",
				"-netdev", "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:50443-:50443,hostfwd=tcp:127.0.0.1:2222-:22," +
					"guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080",
			}, network, []string{}, devices, []string{
				"-serial", "stdio",
				"-qmp", "unix:/run/vm/qmp.sock,server=on,wait=off",
				"-no-reboot",
			}),
		},
		{
			name: "tap NICs after the user network",
			cfg: Config{Disk: "/img/disk.raw", Accel: "tcg", TapNICs: []TapNIC{
				{File: os.Stdin, ID: "lan", MAC: "52:54:00:00:00:01"}, {File: os.Stdin, ID: "wan"}}},
			want: cat([]string{
				"-nodefaults", "-machine", "q35", "-accel", "tcg", "-cpu", "max",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/OVMF/OVMF_VARS_4M.fd",
				"-drive", "if=none,id=disk0,format=raw,file=/img/disk.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
				"-netdev", "user,id=net0,restrict=on",
			}, network, []string{
				"-netdev", "tap,id=lan-net,fd=3", "-device", "virtio-net-pci,netdev=lan-net,id=lan,romfile=,mac=52:54:00:00:00:01",
				"-netdev", "tap,id=wan-net,fd=4", "-device", "virtio-net-pci,netdev=wan-net,id=wan,romfile=",
			}, devices, []string{"-serial", "stdio", "-no-reboot"}),
		},
		{
			// The arm64 machine: virt with GICv3, AAVMF, the TIS on the system bus; the same
			// PCI devices, network and serial console (virt's PL011).
			name: "arm64",
			cfg:  Config{Arch: contract.ARM64, Disk: "/img/disk.raw", Accel: "tcg,thread=multi", TPMSocket: "/run/tpm.sock"},
			want: cat([]string{
				"-nodefaults", "-machine", "virt,gic-version=3", "-accel", "tcg,thread=multi", "-cpu", "max,pauth-impdef=on",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/AAVMF/AAVMF_VARS.fd",
				"-chardev", "socket,id=chrtpm,path=/run/tpm.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
				"-device", "tpm-tis-device,tpmdev=tpm0",
				"-drive", "if=none,id=disk0,format=raw,file=/img/disk.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
				"-netdev", "user,id=net0,restrict=on",
			}, network, devices, []string{"-serial", "stdio", "-no-reboot"}),
		},
		{
			// uname's name for arm64, and the amd64 TIS for comparison.
			name: "aarch64 spelling, amd64 TPM",
			cfg:  Config{Arch: "aarch64", Disk: "/d.raw", Accel: "tcg", NoNetwork: true, NoRNG: true, CPU: "cortex-a72"},
			want: cat([]string{
				"-nodefaults", "-machine", "virt,gic-version=3", "-accel", "tcg", "-cpu", "cortex-a72",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/AAVMF/AAVMF_VARS.fd",
				"-drive", "if=none,id=disk0,format=raw,file=/d.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
			}, devices[2:], []string{"-serial", "stdio", "-no-reboot"}),
		},
		{
			name: "amd64 TPM",
			cfg:  Config{Disk: "/d.raw", Accel: "tcg", NoNetwork: true, NoRNG: true, TPMSocket: "/run/tpm.sock"},
			want: cat([]string{
				"-nodefaults", "-machine", "q35", "-accel", "tcg", "-cpu", "max",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/OVMF/OVMF_VARS_4M.fd",
				"-chardev", "socket,id=chrtpm,path=/run/tpm.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
				"-device", "tpm-tis,tpmdev=tpm0",
				"-drive", "if=none,id=disk0,format=raw,file=/d.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
			}, devices[2:], []string{"-serial", "stdio", "-no-reboot"}),
		},
		{
			name: "interactive without network, commas escaped",
			cfg: Config{
				Disk:        "/a,b/disk.raw",
				Accel:       "tcg",
				NoNetwork:   true,
				Interactive: true,
				AllowReboot: true,
				ExtraArgs:   []string{"-s"},
			},
			want: cat([]string{
				"-nodefaults", "-machine", "q35", "-accel", "tcg", "-cpu", "max",
				"-smp", "2", "-m", "1024", "-display", "none",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
				"-drive", "if=pflash,format=raw,unit=1,snapshot=on,file=/usr/share/OVMF/OVMF_VARS_4M.fd",
				"-drive", "if=none,id=disk0,format=raw,file=/a,,b/disk.raw",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
			}, devices, []string{"-serial", "mon:stdio", "-s"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Args()
			if !slices.Equal(got, tt.want) {
				t.Errorf("Args() =\n%s\nwant\n%s", strings.Join(got, " "), strings.Join(tt.want, " "))
			}
		})
	}
}

func TestArgsDefaultAccel(t *testing.T) {
	// KVM runs only the host's architecture: a foreign guest is always TCG.
	for _, tt := range []struct {
		arch contract.Arch
		want string
	}{
		{contract.AMD64, defaultAccel()},
		{contract.ARM64, "tcg,thread=multi"},
	} {
		if runtime.GOARCH == tt.arch.Info().GOARCH {
			tt.want = defaultAccel()
		}
		args := Config{Arch: tt.arch, Disk: "d"}.Args()
		i := slices.Index(args, "-accel")
		if i < 0 || args[i+1] != tt.want {
			t.Errorf("%s: Args() = %q, want -accel %s", tt.arch, args, tt.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	for _, tt := range []struct {
		arch contract.Arch
		want string
	}{
		{"", "qemu-system-x86_64 -nodefaults "},
		{contract.AMD64, "qemu-system-x86_64 -nodefaults "},
		{contract.ARM64, "qemu-system-aarch64 -nodefaults "},
	} {
		got := Config{Arch: tt.arch, Disk: "/my disk.raw", Accel: "tcg", NoNetwork: true}.CommandLine()
		for _, want := range []string{tt.want, "'if=none,id=disk0,format=raw,file=/my disk.raw'"} {
			if !strings.Contains(got, want) {
				t.Errorf("CommandLine() = %s\nwant it to contain %s", got, want)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	fw := filepath.Join(dir, "fw.fd")
	for _, f := range []string{disk, fw} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ok := Config{Disk: disk, OVMFCode: fw, OVMFVarsTemplate: fw}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // empty: valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no disk", func(c *Config) { c.Disk = "" }, "Disk is empty"},
		{"missing disk", func(c *Config) { c.Disk = filepath.Join(dir, "nope.raw") }, "Disk: stat"},
		{"disk is a dir", func(c *Config) { c.Disk = dir }, "is a directory"},
		{"missing firmware", func(c *Config) { c.OVMFCode = "/nonexistent/CODE.fd" }, "OVMFCode"},
		{"missing vars", func(c *Config) { c.OVMFVars = "/nonexistent/VARS.fd" }, "OVMFVars:"},
		{"missing extra disk", func(c *Config) { c.ExtraDisks = []string{disk, "/nonexistent.iso"} }, "ExtraDisks[1]"},
		{"comma in hostfwd", func(c *Config) { c.HostFwd = []string{"tcp::1-:1,x"} }, "forwarding rule"},
		{"empty guestfwd", func(c *Config) { c.GuestFwd = []string{""} }, "forwarding rule"},
		{"tap NIC", func(c *Config) { c.TapNICs = []TapNIC{{File: os.Stdin, ID: "lan", MAC: "52:54:00:00:00:01"}} }, ""},
		{"tap NIC without a file", func(c *Config) { c.TapNICs = []TapNIC{{ID: "lan"}} }, "TapNICs[0]"},
		{"tap NIC without an ID", func(c *Config) { c.TapNICs = []TapNIC{{File: os.Stdin}} }, "TapNICs[0]"},
		{"tap NIC with a comma", func(c *Config) { c.TapNICs = []TapNIC{{File: os.Stdin, ID: "a,b"}} }, "TapNICs[0]"},
		{"arm64", func(c *Config) { c.Arch = contract.ARM64 }, ""},
		{"unknown arch", func(c *Config) { c.Arch = "riscv64" }, `Arch "riscv64"`},
		{"secure boot on arm64", func(c *Config) { c.Arch, c.SecureBoot = contract.ARM64, true }, "SecureBoot: not supported on arm64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Defaults().validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAvailable(t *testing.T) {
	if err := Available(); err != nil {
		t.Logf("this host cannot boot VMs: %v", err)
	}
	err := available("no-such-qemu-binary", "qemu-system-x86", "/nonexistent/CODE.fd", "/nonexistent/VARS.fd", "ovmf")
	if err == nil {
		t.Fatal("available() = nil with nothing installed")
	}
	for _, want := range []string{"no-such-qemu-binary", "qemu-system-x86", "/nonexistent/CODE.fd", "/nonexistent/VARS.fd", "ovmf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("available() = %v\nwant it to mention %q", err, want)
		}
	}
	// Each architecture names its own emulator and firmware, and their packages.
	for _, a := range contract.Archs() {
		m, err := machineOf(a)
		if err != nil {
			t.Fatal(err)
		}
		if m.qemuPackage == "" || m.firmwarePackage == "" || m.code == "" || m.varsTemplate == "" || m.board == "" || m.tcgCPU == "" || m.tpmDevice == "" {
			t.Errorf("%s: machine %+v has empty fields", a, m)
		}
		if err := AvailableArch(a); err != nil {
			t.Logf("this host cannot boot %s VMs: %v", a, err)
		}
	}
	if err := AvailableArch("riscv64"); err == nil || !strings.Contains(err.Error(), `"riscv64"`) {
		t.Errorf("AvailableArch(riscv64) = %v", err)
	}
}

// containsRun reports whether want appears in args as a contiguous run.
func containsRun(args, want []string) bool {
	for i := 0; i+len(want) <= len(args); i++ {
		if slices.Equal(args[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func TestArgsDevices(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // a contiguous run of Args()
		not  []string // arguments that must not appear
	}{
		{
			name: "AHCI disk, e1000e, no virtio",
			cfg:  Config{Disk: "/d.raw", DiskBus: BusAHCI, NIC: NICE1000e, NoRNG: true},
			want: []string{"-drive", "if=none,id=disk0,format=raw,file=/d.raw", "-device", "ide-hd,drive=disk0,bus=ide.0,bootindex=1",
				"-netdev", "user,id=net0,restrict=on", "-device", "e1000e,netdev=net0,romfile="},
			not: []string{"virtio-blk-pci,drive=disk0,bootindex=1", "virtio-net-pci,netdev=net0,romfile=", "virtio-rng-pci"},
		},
		{
			name: "the boot disk second on one NVMe controller",
			cfg: Config{Disk: "/d.raw", DiskBus: BusNVMe, DiskNVMe: NVMeSlot{NSID: 2},
				Drives: []Drive{{Path: "/scratch.raw", Bus: BusNVMe}}},
			want: []string{
				"-device", "nvme,id=nvme0,serial=ballast-nvme0",
				"-drive", "if=none,id=disk0,format=raw,file=/d.raw", "-device", "nvme-ns,drive=disk0,bus=nvme0,nsid=2,bootindex=1",
				"-drive", "if=none,id=disk1,format=raw,file=/scratch.raw", "-device", "nvme-ns,drive=disk1,bus=nvme0,nsid=1",
			},
		},
		{
			name: "the boot disk on the second NVMe controller",
			cfg: Config{Disk: "/d.qcow2", DiskBus: BusNVMe, DiskNVMe: NVMeSlot{Controller: 1}, Snapshot: true,
				Drives: []Drive{{Path: "/a.raw", Bus: BusNVMe}, {Path: "/b.raw", Bus: BusNVMe, ReadOnly: true}}},
			want: []string{
				"-device", "nvme,id=nvme0,serial=ballast-nvme0", "-device", "nvme,id=nvme1,serial=ballast-nvme1",
				"-drive", "if=none,id=disk0,format=qcow2,file=/d.qcow2,snapshot=on", "-device", "nvme-ns,drive=disk0,bus=nvme1,nsid=1,bootindex=1",
				"-drive", "if=none,id=disk1,format=raw,file=/a.raw", "-device", "nvme-ns,drive=disk1,bus=nvme0,nsid=1",
				"-drive", "if=none,id=disk2,format=raw,readonly=on,file=/b.raw", "-device", "nvme-ns,drive=disk2,bus=nvme0,nsid=2",
			},
		},
		{
			name: "PVSCSI disk and CD-ROM, vmxnet3",
			cfg: Config{Disk: "/d.raw", DiskBus: BusPVSCSI, NIC: NICVmxnet3, HostFwd: []string{"tcp:127.0.0.1:1-:2"},
				Drives: []Drive{{Path: "/ovf-env.iso", Bus: BusPVSCSI, CDROM: true}}},
			want: []string{
				"-device", "pvscsi,id=pvscsi0",
				"-drive", "if=none,id=disk0,format=raw,file=/d.raw", "-device", "scsi-hd,drive=disk0,bus=pvscsi0.0,channel=0,scsi-id=0,lun=0,bootindex=1",
				"-drive", "if=none,id=disk1,format=raw,readonly=on,file=/ovf-env.iso", "-device", "scsi-cd,drive=disk1,bus=pvscsi0.0,channel=0,scsi-id=1,lun=0",
				"-netdev", "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:1-:2", "-device", "vmxnet3,netdev=net0,romfile=",
			},
		},
		{
			name: "booting an AHCI CD-ROM ahead of the disk, extra disks still virtio",
			cfg: Config{Disk: "/target.raw", ExtraDisks: []string{"/cidata.img"},
				Drives: []Drive{{Path: "/installer.iso", Bus: BusAHCI, CDROM: true, Boot: true}, {Path: "/data.raw", Bus: BusAHCI}}},
			want: []string{
				"-drive", "if=none,id=disk0,format=raw,file=/target.raw", "-device", "virtio-blk-pci,drive=disk0,bootindex=2",
				"-drive", "if=none,id=disk1,format=raw,readonly=on,file=/cidata.img", "-device", "virtio-blk-pci,drive=disk1",
				"-drive", "if=none,id=disk2,format=raw,readonly=on,file=/installer.iso", "-device", "ide-cd,drive=disk2,bus=ide.0,bootindex=1",
				"-drive", "if=none,id=disk3,format=raw,file=/data.raw", "-device", "ide-hd,drive=disk3,bus=ide.1",
			},
		},
		{
			name: "USB stick",
			cfg:  Config{Disk: "/stick.raw", DiskBus: BusUSB},
			want: []string{"-device", "qemu-xhci,id=xhci",
				"-drive", "if=none,id=disk0,format=raw,file=/stick.raw", "-device", "usb-storage,drive=disk0,bus=xhci.0,bootindex=1"},
		},
		{
			name: "tap NICs of other models",
			cfg: Config{Disk: "/d.raw", TapNICs: []TapNIC{{File: os.Stdin, ID: "lan", Model: NICE1000e},
				{File: os.Stdin, ID: "vm", MAC: "52:54:00:00:00:02", Model: NICVmxnet3}}},
			want: []string{"-netdev", "tap,id=lan-net,fd=3", "-device", "e1000e,netdev=lan-net,id=lan,romfile=",
				"-netdev", "tap,id=vm-net,fd=4", "-device", "vmxnet3,netdev=vm-net,id=vm,romfile=,mac=52:54:00:00:00:02"},
		},
		{
			name: "SMBIOS system strings, commas escaped",
			cfg:  Config{Disk: "/d.raw", SMBIOS: SMBIOSSystem{Manufacturer: "Amazon EC2", Product: "m5.large", UUID: "ec2e1916-9099-7caf-fd21-012345abcdef", Family: "a,b"}},
			want: []string{"-smbios", "type=1,manufacturer=Amazon EC2,product=m5.large,uuid=ec2e1916-9099-7caf-fd21-012345abcdef,family=a,,b"},
		},
		{
			name: "no SMBIOS by default",
			cfg:  Config{Disk: "/d.raw"},
			not:  []string{"-smbios", "-kernel", "-append", "-initrd"},
		},
		{
			name: "kernel boot with an empty target disk",
			cfg:  Config{Disk: "/empty.raw", Kernel: "/net/installer.efi", Append: "ballast.install ballast.install.source=http://10.0.2.100/install.json"},
			want: []string{"-drive", "if=none,id=disk0,format=raw,file=/empty.raw", "-device", "virtio-blk-pci,drive=disk0,bootindex=1",
				"-kernel", "/net/installer.efi", "-append", "ballast.install ballast.install.source=http://10.0.2.100/install.json"},
			not: []string{"-initrd"},
		},
		{
			name: "kernel and initrd without a disk",
			cfg:  Config{Kernel: "/vmlinuz", Initrd: "/initrd.img"},
			want: []string{"-kernel", "/vmlinuz", "-initrd", "/initrd.img"},
			not:  []string{"-append", "if=none,id=disk0,format=raw,file="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Accel = "tcg"
			got := tt.cfg.Args()
			if len(tt.want) > 0 && !containsRun(got, tt.want) {
				t.Errorf("Args() =\n%s\nwant it to contain\n%s", strings.Join(got, " "), strings.Join(tt.want, " "))
			}
			for _, n := range tt.not {
				if slices.Contains(got, n) {
					t.Errorf("Args() = %s\nwant no %q", strings.Join(got, " "), n)
				}
			}
			if _, err := tt.cfg.storageArgs(); err != nil {
				t.Errorf("storageArgs() = %v", err)
			}
		})
	}
}

func TestValidateDevices(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	fw := filepath.Join(dir, "fw.fd")
	for _, f := range []string{disk, fw} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ok := Config{Disk: disk, OVMFCode: fw, OVMFVarsTemplate: fw}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // empty: valid
	}{
		{"every bus", func(c *Config) {
			c.DiskBus = BusNVMe
			c.Drives = []Drive{{Path: disk, Bus: BusAHCI}, {Path: disk, Bus: BusAHCI, CDROM: true}, {Path: disk, Bus: BusPVSCSI, ReadOnly: true},
				{Path: disk, Bus: BusPVSCSI, CDROM: true}, {Path: disk, Bus: BusUSB, ReadOnly: true}, {Path: disk, Bus: BusNVMe, NVMe: NVMeSlot{Controller: 1}}}
		}, ""},
		{"unknown disk bus", func(c *Config) { c.DiskBus = "ide" }, `Disk: unknown bus "ide"`},
		{"unknown drive bus", func(c *Config) { c.Drives = []Drive{{Path: disk, Bus: "sata"}} }, `Drives[0]: unknown bus "sata"`},
		{"missing drive", func(c *Config) { c.Drives = []Drive{{Path: filepath.Join(dir, "nope.iso")}} }, "Drives[0]: stat"},
		{"read-only AHCI disk", func(c *Config) { c.Drives = []Drive{{Path: disk, Bus: BusAHCI, ReadOnly: true}} }, "Drives[0]: QEMU's AHCI disk"},
		{"CD-ROM on virtio", func(c *Config) { c.Drives = []Drive{{Path: disk, CDROM: true}} }, "Drives[0]: a CD-ROM on virtio"},
		{"CD-ROM on NVMe", func(c *Config) { c.Drives = []Drive{{Path: disk, Bus: BusNVMe, CDROM: true}} }, "Drives[0]: a CD-ROM on nvme"},
		{"CD-ROM on USB", func(c *Config) { c.Drives = []Drive{{Path: disk, Bus: BusUSB, CDROM: true}} }, "Drives[0]: a CD-ROM on usb"},
		{"seven AHCI disks", func(c *Config) {
			c.DiskBus = BusAHCI
			for range 6 {
				c.Drives = append(c.Drives, Drive{Path: disk, Bus: BusAHCI})
			}
		}, "Drives[5]: the AHCI controller has 6 ports"},
		{"NVMe namespace twice", func(c *Config) {
			c.DiskBus, c.DiskNVMe = BusNVMe, NVMeSlot{NSID: 1}
			c.Drives = []Drive{{Path: disk, Bus: BusNVMe, NVMe: NVMeSlot{NSID: 1}}}
		}, "Drives[0]: NVMe controller 0 has namespace 1 twice"},
		{"negative NVMe namespace", func(c *Config) { c.DiskBus, c.DiskNVMe = BusNVMe, NVMeSlot{NSID: -1} }, "Disk: NVMe controller 0, namespace -1"},
		{"two boot drives", func(c *Config) {
			c.Drives = []Drive{{Path: disk, Bus: BusAHCI, CDROM: true, Boot: true}, {Path: disk, Boot: true}}
		}, "2 Drives have Boot"},
		{"no disk but a boot CD-ROM", func(c *Config) {
			c.Disk = ""
			c.Drives = []Drive{{Path: disk, Bus: BusAHCI, CDROM: true, Boot: true}}
		}, ""},
		{"no disk but a kernel", func(c *Config) { c.Disk, c.Kernel, c.Append = "", disk, "console=ttyS0" }, ""},
		{"no disk, nothing boots", func(c *Config) { c.Disk = ""; c.Drives = []Drive{{Path: disk}} }, "Disk is empty"},
		{"missing kernel", func(c *Config) { c.Kernel = filepath.Join(dir, "vmlinuz") }, "Kernel: stat"},
		{"append without a kernel", func(c *Config) { c.Append = "quiet" }, "Initrd and Append need a Kernel"},
		{"unknown NIC", func(c *Config) { c.NIC = "rtl8139" }, `NIC "rtl8139"`},
		{"unknown tap NIC model", func(c *Config) { c.TapNICs = []TapNIC{{File: os.Stdin, ID: "x", Model: "ne2k_pci"}} }, "TapNICs[0]: model"},
		{"SMBIOS with a line break", func(c *Config) { c.SMBIOS.Product = "a\nb" }, "SMBIOS product"},
		{"arm64 buses", func(c *Config) {
			c.Arch, c.DiskBus = contract.ARM64, BusNVMe
			c.Drives = []Drive{{Path: disk, Bus: BusUSB, ReadOnly: true}, {Path: disk, Bus: BusPVSCSI, CDROM: true}, {Path: disk}}
		}, ""},
		{"AHCI on arm64", func(c *Config) { c.Arch, c.DiskBus = contract.ARM64, BusAHCI }, "Disk: ahci is q35's built-in controller; the arm64 machine has none"},
		{"AHCI CD-ROM on arm64", func(c *Config) {
			c.Arch = contract.ARM64
			c.Drives = []Drive{{Path: disk, Bus: BusAHCI, CDROM: true}}
		}, "Drives[0]: ahci is q35's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.Defaults().validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
