package variant

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
`

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		edit func(string) string
		want string // substring of the error; "" = valid
	}{
		{"good", func(s string) string { return s }, ""},
		{"syntax", func(s string) string { return strings.Replace(s, `esp = "64MiB"`, `esp = `, 1) }, "t.toml:10:"},
		{"unknown top key", func(s string) string { return s + "colour = 1\n" }, `t.toml:16: unknown key "output.colour"`},
		{"unknown nested key", func(s string) string {
			return strings.Replace(s, "[partitions]\n", "[partitions]\nswap = \"1MiB\"\n", 1)
		}, `t.toml:10: unknown key "partitions.swap"`},
		{"wrong type", func(s string) string { return strings.Replace(s, `modules = ["vfat"]`, `modules = "vfat"`, 1) }, "t.toml:5:"},
		{"bad size", func(s string) string { return strings.Replace(s, `"8MiB"`, `"eight"`, 1) }, "t.toml:12:"},
		{"size not MiB", func(s string) string { return strings.Replace(s, `"8MiB"`, `"1000KiB"`, 1) }, `t.toml:12: key "partitions.verity": 1024000 bytes is not a whole number of MiB`},
		{"small esp", func(s string) string { return strings.Replace(s, `"64MiB"`, `"8MiB"`, 1) }, `key "partitions.esp": 8 MiB is below`},
		{"missing kernel", func(s string) string { return strings.Replace(s, `package = "linux-image-x"`, ``, 1) }, `key "kernel.package": missing`},
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
		{"unknown format", func(s string) string { return strings.Replace(s, `formats = ["raw"]`, `formats = ["iso"]`, 1) }, `unknown "iso"`},
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
