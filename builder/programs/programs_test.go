package programs

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles programs")
	}
	netconf, err := contract.FindProgram("netconf")
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := filepath.Abs("../..")
	for _, arch := range contract.Archs() {
		dir := t.TempDir()
		got, err := Build(context.Background(), repo, dir, arch, []contract.Program{netconf}, "9.9.9")
		if err != nil {
			t.Fatal(err)
		}
		path := got["netconf"]
		if path != filepath.Join(dir, "netconf") {
			t.Fatalf("built %v", got)
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != elf.Machine(arch.Info().ELFMachine) || f.Section(".interp") != nil {
			t.Errorf("%s: not a static %s binary (machine %v)", arch, arch.Info().Machine, f.Machine)
		}
		f.Close()
		info, err := buildinfo.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"-trimpath=true", "CGO_ENABLED=0", "GOARCH=" + arch.Info().GOARCH} {
			if !strings.Contains(info.String(), want) {
				t.Errorf("%s: build info lacks %s:\n%s", arch, want, info)
			}
		}
	}
	dir := t.TempDir()
	sh := contract.Program{Name: "sh", Package: "busybox-static", Path: "/usr/bin/sh"}
	if _, err := Build(context.Background(), repo, dir, contract.AMD64, []contract.Program{sh}, "1"); err == nil || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("building a Debian program: %v", err)
	}
}
