package qemu

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
	args := Config{Disk: "d"}.Args()
	i := slices.Index(args, "-accel")
	if i < 0 || args[i+1] != defaultAccel() {
		t.Fatalf("Args() = %q, want -accel %s", args, defaultAccel())
	}
}

func TestCommandLine(t *testing.T) {
	got := Config{Disk: "/my disk.raw", Accel: "tcg", NoNetwork: true}.CommandLine()
	for _, want := range []string{"qemu-system-x86_64 -nodefaults ", "'if=none,id=disk0,format=raw,file=/my disk.raw'"} {
		if !strings.Contains(got, want) {
			t.Errorf("CommandLine() = %s\nwant it to contain %s", got, want)
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mutate(&c)
			err := c.withDefaults().validate()
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
	err := available("no-such-qemu-binary", "/nonexistent/CODE.fd", "/nonexistent/VARS.fd")
	if err == nil {
		t.Fatal("available() = nil with nothing installed")
	}
	for _, want := range []string{"no-such-qemu-binary", "qemu-system-x86", "/nonexistent/CODE.fd", "/nonexistent/VARS.fd", "ovmf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("available() = %v\nwant it to mention %q", err, want)
		}
	}
}
