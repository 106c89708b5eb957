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
	dir := t.TempDir()
	repo, _ := filepath.Abs("../..")
	got, err := Build(context.Background(), repo, dir, []contract.Program{netconf}, "9.9.9")
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
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Section(".interp") != nil {
		t.Errorf("not a static x86-64 binary (machine %v)", f.Machine)
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-trimpath=true", "CGO_ENABLED=0"} {
		if !strings.Contains(info.String(), want) {
			t.Errorf("build info lacks %s:\n%s", want, info)
		}
	}
	sh := contract.Program{Name: "sh", Package: "busybox-static", Path: "/usr/bin/sh"}
	if _, err := Build(context.Background(), repo, dir, []contract.Program{sh}, "1"); err == nil || !strings.Contains(err.Error(), "busybox-static") {
		t.Errorf("building a Debian program: %v", err)
	}
}
