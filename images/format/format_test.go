package format

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name string
		want Format
		err  string
	}{
		{"raw", Raw, ""},
		{"qcow2", QCOW2, ""},
		{"vmdk", VMDK, ""},
		{"vhd", VHD, ""},
		{"gce", GCE, ""},
		{"ova", OVA, ""},
		{"ami", AMI, ""},
		{"QCOW2", "", `unknown disk format "QCOW2" (known: raw, qcow2, vmdk, vhd, gce, ova, ami)`},
		{"vpc", "", `unknown disk format "vpc"`},
		{"", "", `unknown disk format ""`},
	} {
		got, err := Parse(c.name)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("Parse(%q) = %q, %v; want %q, %q", c.name, got, err, c.want, c.err)
		}
	}
}

func TestExt(t *testing.T) {
	for f, want := range map[Format]string{
		Raw: ".raw", QCOW2: ".qcow2", VMDK: ".vmdk", VHD: ".vhd", GCE: ".tar.gz", OVA: ".ova", AMI: ".json", "iso": "",
	} {
		if got := Ext(f); got != want {
			t.Errorf("Ext(%q) = %q, want %q", f, got, want)
		}
	}
}

// TestConvertBadInput checks each refusal names the file and the reason,
// and leaves no output behind.
func TestConvertBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	odd := write("odd.raw", 1000)
	empty := write("empty.raw", 0)
	good := write("good.raw", 4096)
	missing := filepath.Join(dir, "missing.raw")
	for _, c := range []struct {
		name     string
		raw, out string
		f        Format
		want     []string
	}{
		{"missing", missing, "out.qcow2", QCOW2, []string{missing, "no such file"}},
		{"not sectors", odd, "out.vhd", VHD, []string{odd, "1000 bytes", "512-byte sectors"}},
		{"empty", empty, "out.vmdk", VMDK, []string{empty, "empty"}},
		{"directory", dir, "out.raw", Raw, []string{dir, "is a directory"}},
		{"unknown format", good, "out.iso", "iso", []string{good, `unknown disk format "iso"`}},
		{"onto itself", good, good, QCOW2, []string{good, "overwrite the input"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := c.out
			if !filepath.IsAbs(out) {
				out = filepath.Join(t.TempDir(), out)
			}
			err := Convert(context.Background(), c.raw, out, c.f, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if out != c.raw {
				if _, serr := os.Stat(out); !errors.Is(serr, os.ErrNotExist) {
					t.Errorf("output left behind: %v", serr)
				}
			}
		})
	}
}

// TestConvertRawOntoItself is a no-op, not an error: the raw output of a
// build may simply be its input.
func TestConvertRawOntoItself(t *testing.T) {
	raw := makeDisk(t, mib, testPatches(mib))
	before := fileHash(t, raw)
	if err := Convert(context.Background(), raw, raw, Raw, Options{}); err != nil {
		t.Fatal(err)
	}
	if fileHash(t, raw) != before {
		t.Error("input changed")
	}
}

// TestConvertCancelled stops at the context and cleans up, temporary file
// included.
func TestConvertCancelled(t *testing.T) {
	raw := makeDisk(t, 8*mib, testPatches(8*mib))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, f := range Formats() {
		dir := t.TempDir()
		err := Convert(ctx, raw, filepath.Join(dir, "out"+Ext(f)), f, testOpts)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", f, err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s: left %v behind", f, left)
		}
	}
}
