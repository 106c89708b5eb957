package variant

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
)

const good = `name = "t"
[kernel]
package = "linux-image-x"
initramfs-modules = ["virtio_blk"]
modules = ["vfat"]
cmdline = ["console=ttyS0"]
[programs]
include = ["apiserver"]
[partitions]
esp = "64MiB"
root = "128MiB"
verity = "8MiB"
data = "1GiB"
[output]
formats = ["raw"]
[secure-boot]
keys = "keys"
`

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		edit func(string) string
		want string // substring of the error; "" = valid
	}{
		{"good", func(s string) string { return s }, ""},
		{"syntax", func(s string) string { return strings.Replace(s, `esp = "64MiB"`, `esp = `, 1) }, "t.toml:10:"},
		{"unknown top key", func(s string) string { return s + "colour = 1\n" }, `t.toml:18: unknown key "secure-boot.colour"`},
		{"unknown nested key", func(s string) string {
			return strings.Replace(s, "[partitions]\n", "[partitions]\nswap = \"1MiB\"\n", 1)
		}, `t.toml:10: unknown key "partitions.swap"`},
		{"wrong type", func(s string) string { return strings.Replace(s, `modules = ["vfat"]`, `modules = "vfat"`, 1) }, "t.toml:5:"},
		{"bad size", func(s string) string { return strings.Replace(s, `"8MiB"`, `"eight"`, 1) }, "t.toml:12:"},
		{"size not MiB", func(s string) string { return strings.Replace(s, `"8MiB"`, `"1000KiB"`, 1) }, `t.toml:12: key "partitions.verity": 1024000 bytes is not a whole number of MiB`},
		{"small esp", func(s string) string { return strings.Replace(s, `"64MiB"`, `"8MiB"`, 1) }, `key "partitions.esp": 8 MiB is below`},
		{"missing kernel", func(s string) string { return strings.Replace(s, `package = "linux-image-x"`, ``, 1) }, `key "kernel.package": missing`},
		{"production unsigned", func(s string) string { return strings.Replace(s, "[secure-boot]\nkeys = \"keys\"\n", "", 1) },
			`t.toml: key "secure-boot.keys": missing: a production variant`},
		{"dev unsigned", func(s string) string {
			return strings.Replace(strings.Replace(s, "[secure-boot]\nkeys = \"keys\"\n", "", 1), `name = "t"`, "name = \"t\"\ndev = true", 1)
		}, ""},
		{"local encryption", func(s string) string { return s + "[local]\nencryption = \"luks1\"\n" }, `t.toml:19: key "local.encryption": "luks1": want "tpm" or "plain"`},
		{"local without tpm", func(s string) string { return s + "[local]\nwithout-tpm = \"ask\"\n" }, `t.toml:19: key "local.without-tpm": "ask": want "plain" or "refuse"`},
		{"keys spaces", func(s string) string { return strings.Replace(s, `keys = "keys"`, `keys = " keys"`, 1) }, `t.toml:17: key "secure-boot.keys": " keys": leading or trailing space`},
		{"name mismatch", func(s string) string { return strings.Replace(s, `name = "t"`, `name = "other"`, 1) }, `t.toml:1: key "name": "other" does not match`},
		{"unknown program", func(s string) string {
			return strings.Replace(s, `include = ["apiserver"]`, `include = ["apiserver", "ssh"]`, 1)
		}, `t.toml:8: key "programs.include": unknown "ssh"`},
		{"shell needs dev", func(s string) string {
			return strings.Replace(s, `include = ["apiserver"]`, `include = ["apiserver", "console-shell"]`, 1)
		}, `key "programs.include": console-shell is for dev variants only`},
		{"shell needs its package", func(s string) string {
			return strings.Replace(strings.Replace(s, `include = ["apiserver"]`, `include = ["apiserver", "console-shell"]`, 1), `name = "t"`, "name = \"t\"\ndev = true", 1)
		}, `console-shell comes from the Debian package busybox-static`},
		{"runtime needs its component", func(s string) string {
			return strings.Replace(s, `include = ["apiserver"]`, `include = ["apiserver", "containerd"]`, 1)
		}, `containerd comes from the Go component containerd: add it to packages.go`},
		{"an init is not listed", func(s string) string {
			return strings.Replace(s, `include = ["apiserver"]`, `include = ["apiserver", "system-init"]`, 1)
		}, `unknown "system-init"`},
		{"reserved cmdline", func(s string) string { return strings.Replace(s, `"console=ttyS0"`, `"roothash=00"`, 1) }, "set by the builder"},
		{"unknown format", func(s string) string { return strings.Replace(s, `formats = ["raw"]`, `formats = ["raw", "dmg"]`, 1) }, `t.toml:15: key "output.formats": unknown "dmg"`},
		{"cloud and installer formats", func(s string) string {
			return strings.Replace(s, `formats = ["raw"]`, `formats = ["raw", "vmdk", "ami", "ova", "iso", "netboot"]`, 1)
		}, ""},
		{"two archs", func(s string) string {
			return strings.Replace(s, `package = "linux-image-x"`, `package = "linux-image-x-{arch}"`, 1) + "arch = [\"amd64\", \"arm64\"]\n"
		}, `t.toml:18: unknown key "secure-boot.arch"`},
		{"archs", func(s string) string {
			return strings.Replace(strings.Replace(s, `package = "linux-image-x"`, `package = "linux-image-x-{arch}"`, 1), `name = "t"`, "name = \"t\"\narch = [\"amd64\", \"arm64\"]", 1)
		}, ""},
		{"unknown arch", func(s string) string {
			return strings.Replace(s, `name = "t"`, "name = \"t\"\narch = [\"riscv64\"]", 1)
		},
			`t.toml:2: key "arch": unknown "riscv64" (known: amd64, arm64)`},
		{"arch twice", func(s string) string {
			return strings.Replace(s, `name = "t"`, "name = \"t\"\narch = [\"arm64\", \"arm64\"]", 1)
		},
			`t.toml:2: key "arch": "arm64" listed twice`},
		{"no arch", func(s string) string { return strings.Replace(s, `name = "t"`, "name = \"t\"\narch = []", 1) },
			`t.toml:2: key "arch": empty`},
		{"one kernel for two archs", func(s string) string {
			return strings.Replace(s, `name = "t"`, "name = \"t\"\narch = [\"amd64\", \"arm64\"]", 1)
		}, `t.toml:4: key "kernel.package": "linux-image-x" names one package for 2 architectures: write {arch}`},
		{"bad placeholder", func(s string) string {
			return strings.Replace(s, `package = "linux-image-x"`, `package = "linux-image-{abi}-{arch}"`, 1)
		},
			`key "kernel.package": "linux-image-{abi}-{arch}": the only placeholder is {arch}`},
		{"table of an arch not built", func(s string) string { return s + "[arm64]\nmodules = [\"pl031\"]\n" },
			`t.toml:18: key "arm64": [arm64] is given but arch does not list "arm64"`},
		{"arch serial without console", func(s string) string {
			return strings.Replace(s, `name = "t"`, "name = \"t\"\narch = [\"arm64\"]", 1) + "[arm64]\nserial = \"ttyAMA0\"\n"
		}, `key "arm64.serial": replaces console.serial: give a [console] table`},
		{"arch bad module", func(s string) string {
			return strings.Replace(s, `name = "t"`, "name = \"t\"\narch = [\"arm64\"]", 1) + "[arm64]\nmodules = [\"a b\"]\n"
		}, `key "arm64.modules": "a b" is not a valid name`},
		{"ami without vmdk", func(s string) string { return strings.Replace(s, `formats = ["raw"]`, `formats = ["raw", "ami"]`, 1) },
			`t.toml:15: key "output.formats": "ami" is imported from the vmdk: add "vmdk"`},
		{"installer without nocloud", func(s string) string {
			return strings.Replace(s, `formats = ["raw"]`, `formats = ["raw", "iso"]`, 1) + "[userdata]\nsources = [\"cmdline\"]\n"
		}, `t.toml:15: key "output.formats": "iso" installs with user data in a NoCloud seed partition: add "nocloud" to userdata.sources`},
		{"hardware modules", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\nhardware-modules = [\"ahci\", \"e1000e\"]", 1)
		}, ""},
		{"bad hardware module", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\nhardware-modules = [\"ahci\", \"e1000e/x\"]", 1)
		}, `t.toml:6: key "kernel.hardware-modules": "e1000e/x" is not a valid name`},
		{"hardware module twice", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\nhardware-modules = [\"ahci\", \"ahci\"]", 1)
		}, `t.toml:6: key "kernel.hardware-modules": "ahci" listed twice`},
		{"hardware module loaded in the initramfs", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\nhardware-modules = [\"virtio-blk\"]", 1)
		}, `t.toml:6: key "kernel.hardware-modules": virtio-blk is in kernel.initramfs-modules too, which loads it at every boot`},
		{"hardware module optional", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\noptional-modules = [\"tun\"]\nhardware-modules = [\"tun\"]", 1)
		}, `t.toml:7: key "kernel.hardware-modules": tun is in kernel.optional-modules too`},
		{"hardware modules not a list", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\nhardware-modules = \"ahci\"", 1)
		}, `t.toml:6:`},
		{"console", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nserial = \"ttyS0,115200n8\"\nvga = true\n"
		}, ""},
		{"console vga only", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nserial = \"\"\nvga = true\n"
		}, ""},
		{"console and console= words", func(s string) string { return s + "[console]\nserial = \"ttyS0\"\n" },
			`t.toml:6: key "kernel.cmdline": word 1 "console=ttyS0": the consoles are [console]'s to set`},
		{"console bad serial", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nserial = \"ttyS0 115200\"\n"
		}, `t.toml:19: key "console.serial": "ttyS0 115200": want a device`},
		{"console serial is a screen", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nvga = false\nserial = \"tty1\"\n"
		}, `t.toml:20: key "console.serial": "tty1" is a screen, not a serial port: use vga = true`},
		{"console none", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nserial = \"\"\nvga = false\n"
		}, `t.toml:18: key "console": no console`},
		{"console vga not a bool", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nvga = \"yes\"\n"
		}, `t.toml:19:`},
		{"console unknown key", func(s string) string {
			return strings.Replace(s, `"console=ttyS0"`, `"quiet"`, 1) + "[console]\nvga = true\nkeyboard = \"us\"\n"
		}, `t.toml:20: unknown key "console.keyboard"`},
		{"userdata", func(s string) string { return s + "[userdata]\nsources = [\"imds\", \"nocloud\"]\n" }, ""},
		{"userdata unknown source", func(s string) string { return s + "[userdata]\nsources = [\"imds\", \"gce\"]\n" },
			`t.toml:19: key "userdata.sources": unknown "gce" (known: nocloud, ovf, imds, cmdline)`},
		{"userdata twice", func(s string) string { return s + "[userdata]\nsources = [\"imds\", \"imds\"]\n" },
			`t.toml:19: key "userdata.sources": "imds" listed twice`},
		{"userdata empty", func(s string) string { return s + "[userdata]\nsources = []\n" },
			`t.toml:19: key "userdata.sources": missing or empty`},
		{"userdata without sources", func(s string) string { return s + "[userdata]\n" },
			`t.toml:18: key "userdata.sources": missing or empty`},
		{"optional module", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\noptional-modules = [\"tun\"]", 1)
		}, ""},
		{"optional module also loaded at boot", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\noptional-modules = [\"vfat\"]", 1)
		}, `key "kernel.optional-modules": vfat is in kernel.modules too`},
		{"bad optional module", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, "modules = [\"vfat\"]\noptional-modules = [\"a b\"]", 1)
		}, `kernel.optional-modules`},
		{"dup module", func(s string) string {
			return strings.Replace(s, `modules = ["vfat"]`, `modules = ["vfat", "vfat"]`, 1)
		}, `"vfat" listed twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.toml")
			if err := os.WriteFile(path, []byte(c.edit(good)), 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := Load(path)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Partitions.Data != 1<<30 || v.Partitions.ESP != 64<<20 {
					t.Fatalf("sizes: %+v", v.Partitions)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got none", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q: want it to name the file and contain %q", err, c.want)
			}
		})
	}
}

func TestShippedVariantsAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../variants/*.toml")
	if len(files) == 0 {
		t.Fatal("no variants found")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
}

const tufRoot = `{"signed":{"_type":"root","spec_version":"1.0.31","version":1,"keys":{},"roles":{}},"signatures":[{"keyid":"ab","sig":"cd"}]}`

func TestUpdates(t *testing.T) {
	full := good + `[updates]
root = "keys/root.json"
metadata-base-url = "http://10.0.2.100:8080/metadata/"
targets-base-url = "https://updates.example.com/targets"
tries = 5
health-timeout = "90s"
bless-after = "5s"
`
	cases := []struct {
		name string
		text string
		want string // substring of the error; "" = valid
	}{
		{"full", full, ""},
		{"root only", good + "[updates]\nroot = \"keys/root.json\"\n", ""},
		{"absolute root", good + "[updates]\nroot = \"ABS/keys/root.json\"\n", ""},
		{"tries 0", strings.Replace(full, "tries = 5", "tries = 0", 1), `t.toml:22: key "updates.tries": 0: want 1 to 15 boots`},
		{"tries 16", strings.Replace(full, "tries = 5", "tries = 16", 1), `t.toml:22: key "updates.tries": 16`},
		{"tries text", strings.Replace(full, "tries = 5", `tries = "5"`, 1), "t.toml:22:"},
		{"bad duration", strings.Replace(full, `"90s"`, `"ninety"`, 1), "t.toml:23:"},
		{"short health timeout", strings.Replace(full, `"90s"`, `"2s"`, 1), `t.toml:23: key "updates.health-timeout": 2s: want 10s to 24h0m0s`},
		{"negative bless", strings.Replace(full, `"5s"`, `"-5s"`, 1), `t.toml:24: key "updates.bless-after": -5s`},
		{"bless of a week", strings.Replace(full, `"5s"`, `"168h"`, 1), `key "updates.bless-after": 168h0m0s`},
		{"ftp", strings.Replace(full, "http://10.0.2.100:8080", "ftp://10.0.2.100", 1), `t.toml:20: key "updates.metadata-base-url": "ftp://10.0.2.100/metadata/": want an http:// or https:// URL`},
		{"no host", strings.Replace(full, "https://updates.example.com/targets", "https:///targets", 1), `t.toml:21: key "updates.targets-base-url": "https:///targets": no host`},
		{"relative url", strings.Replace(full, "https://updates.example.com/targets", "targets", 1), `want an http:// or https:// URL`},
		{"query", strings.Replace(full, "/targets", "/targets?x=1", 1), `no query or fragment`},
		{"credentials", strings.Replace(full, "https://updates.", "https://u:p@updates.", 1), `credentials`},
		{"url without root", strings.Replace(full, "root = \"keys/root.json\"\n", "", 1), `key "updates.metadata-base-url": set without updates.root`},
		{"missing root", strings.Replace(full, "keys/root.json", "keys/nope.json", 1), `t.toml:19: key "updates.root":`},
		{"not a root", strings.Replace(full, "keys/root.json", "keys/targets.json", 1), `not a signed TUF root (signed._type "targets"`},
		{"not json", strings.Replace(full, "keys/root.json", "keys/garbage.json", 1), `t.toml:19: key "updates.root":`},
		{"root is a directory", strings.Replace(full, "keys/root.json", "keys", 1), `not a regular file`},
		{"unknown key", full + "channel = \"beta\"\n", `t.toml:25: unknown key "updates.channel"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
			for name, body := range map[string]string{
				"root.json":    tufRoot,
				"targets.json": strings.Replace(tufRoot, `"root"`, `"targets"`, 1),
				"garbage.json": "{not json",
			} {
				if err := os.WriteFile(filepath.Join(dir, "keys", name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "t.toml")
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(c.text, "ABS/", dir+"/")), 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := Load(path)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v: want it to name the file and contain %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := v.UpdatePolicy()
			if !p.HasRoot || string(v.Updates.RootJSON) != tufRoot || v.RootPath() != filepath.Join(dir, "keys/root.json") {
				t.Errorf("root: has %v, %d bytes from %s", p.HasRoot, len(v.Updates.RootJSON), v.RootPath())
			}
			if c.name != "full" {
				if p.Tries != 3 || time.Duration(p.HealthTimeout) != 5*time.Minute || time.Duration(p.BlessAfter) != time.Minute || p.MetadataBaseURL != "" {
					t.Errorf("defaults: %+v", p)
				}
				return
			}
			want := contract.UpdatePolicy{MetadataBaseURL: "http://10.0.2.100:8080/metadata/", TargetsBaseURL: "https://updates.example.com/targets",
				Tries: 5, HealthTimeout: contract.Duration(90 * time.Second), BlessAfter: contract.Duration(5 * time.Second), HasRoot: true}
			if p != want {
				t.Errorf("policy %+v\nwant %+v", p, want)
			}
		})
	}
}

// Without an [updates] table the image carries no root and the defaults.
func TestUpdatesDefault(t *testing.T) {
	v, err := Parse("t.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := v.UpdatePolicy(); p != contract.DefaultUpdatePolicy() || p.HasRoot || v.RootPath() != "" {
		t.Errorf("policy %+v, root %q", p, v.RootPath())
	}
}

// A variant file outside variants/ may be named anything: its name is the variant's.
func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.toml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), `"t" does not match the file name "v2"`) {
		t.Errorf("Load: %v", err)
	}
	v, err := LoadFile(path)
	if err != nil || v.Name != "t" {
		t.Fatalf("LoadFile: %v, %+v", err, v)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(good, `name = "t"`, `name = "T t"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), `v2.toml:1: key "name"`) {
		t.Errorf("LoadFile of a bad name: %v", err)
	}
}

// [console] becomes console= words: the screen first, the serial port last (it is /dev/console);
// [userdata] keeps its order.
func TestConsoleAndUserData(t *testing.T) {
	base := strings.Replace(good, `"console=ttyS0"`, `"quiet"`, 1)
	cases := []struct {
		name, text string
		console    string
		sources    []string
	}{
		{"none", good, "", nil},
		{"both", base + "[console]\nvga = true\nserial = \"ttyS1,9600\"\n", "console=tty0 console=ttyS1,9600", nil},
		{"serial", base + "[console]\nserial = \"ttyS0,115200n8\"\n", "console=ttyS0,115200n8", nil},
		{"vga", base + "[console]\nvga = true\n", "console=tty0", nil},
		{"sources", base + "[userdata]\nsources = [\"cmdline\", \"ovf\", \"nocloud\"]\n", "", []string{"cmdline", "ovf", "nocloud"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Parse("t.toml", []byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.ConsoleParams().Format()
			if err != nil || got != c.console {
				t.Errorf("console words %q (%v), want %q", got, err, c.console)
			}
			if !slices.Equal(v.UserData.Sources, c.sources) {
				t.Errorf("sources %q, want %q", v.UserData.Sources, c.sources)
			}
		})
	}
}

func TestForArch(t *testing.T) {
	text := strings.Replace(strings.Replace(good, `package = "linux-image-x"`, `package = "linux-image-x-{arch}"`, 1),
		`name = "t"`, "name = \"t\"\narch = [\"amd64\", \"arm64\"]", 1)
	text = strings.Replace(text, `cmdline = ["console=ttyS0"]`, "", 1) +
		"[console]\nserial = \"ttyS0,115200n8\"\n[arm64]\nserial = \"ttyAMA0,115200n8\"\ninitramfs-modules = [\"virtio_pci\"]\nmodules = [\"rtc-pl031\"]\n"
	path := filepath.Join(t.TempDir(), "t.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.ArchList(); !slices.Equal(got, []contract.Arch{contract.AMD64, contract.ARM64}) {
		t.Fatalf("ArchList %v", got)
	}
	for _, tc := range []struct {
		arch               contract.Arch
		pkg, serial        string
		initramfs, modules []string
	}{
		{contract.AMD64, "linux-image-x-amd64", "ttyS0,115200n8", []string{"virtio_blk"}, []string{"vfat"}},
		{contract.ARM64, "linux-image-x-arm64", "ttyAMA0,115200n8", []string{"virtio_blk", "virtio_pci"}, []string{"vfat", "rtc-pl031"}},
	} {
		r, err := v.ForArch(tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		if r.Target != tc.arch || r.Kernel.Package != tc.pkg || r.Console.Serial != tc.serial ||
			!slices.Equal(r.Kernel.InitramfsModules, tc.initramfs) || !slices.Equal(r.Kernel.Modules, tc.modules) {
			t.Errorf("%s: %+v %+v", tc.arch, r.Kernel, r.Console)
		}
		if !slices.Equal(r.ArchList(), []contract.Arch{tc.arch}) {
			t.Errorf("%s: resolved ArchList %v", tc.arch, r.ArchList())
		}
	}
	// The original is untouched by resolving it.
	if v.Kernel.Package != "linux-image-x-{arch}" || len(v.Kernel.InitramfsModules) != 1 || v.Console.Serial != "ttyS0,115200n8" {
		t.Errorf("ForArch changed the variant: %+v", v.Kernel)
	}
	// A module the arch adds that the kernel list already has is refused once resolved.
	dup := strings.Replace(text, `modules = ["rtc-pl031"]`, `modules = ["vfat"]`, 1)
	os.WriteFile(path, []byte(dup), 0o644)
	if v, err := Load(path); err != nil {
		t.Fatal(err)
	} else if _, err := v.ForArch(contract.ARM64); err == nil || !strings.Contains(err.Error(), `"vfat" listed twice`) || !strings.Contains(err.Error(), "for arm64") {
		t.Errorf("duplicate module across [kernel] and [arm64]: %v", err)
	}
	// Only listed architectures resolve; a variant without arch builds amd64.
	one, err := Parse("one.toml", []byte(strings.Replace(good, `name = "t"`, `name = "one"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.ForArch(contract.ARM64); err == nil || !strings.Contains(err.Error(), "does not build for arm64") {
		t.Errorf("arm64 of an amd64 variant: %v", err)
	}
	if r, err := one.ForArch(contract.AMD64); err != nil || r.Kernel.Package != "linux-image-x" {
		t.Errorf("amd64 of a variant without arch: %v", err)
	}
}
