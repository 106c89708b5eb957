package debian

import (
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestLockClosure(t *testing.T) {
	pkg := func(name, arch string, requiredBy ...string) Package {
		return Package{Name: name, Arch: arch, RequiredBy: requiredBy}
	}
	l := &Lock{path: "x.lock", Architectures: []contract.Arch{contract.AMD64, contract.ARM64}, Packages: []Package{
		pkg("busybox-static", "amd64"),
		pkg("busybox-static", "arm64"),
		pkg("e2fsprogs", "amd64"),
		pkg("e2fsprogs", "arm64"),
		pkg("kernel-amd64", "amd64"),
		pkg("kernel-arm64", "arm64"),
		pkg("kmod", "amd64", "kernel-amd64"),
		pkg("kmod", "arm64", "kernel-arm64"),
		pkg("libc6", "amd64", "kmod", "e2fsprogs", "libgcc-s1", "busybox-tool"),
		pkg("libc6", "arm64", "kmod", "e2fsprogs", "libgcc-s1"),
		pkg("libgcc-s1", "amd64", "libc6"),
		pkg("libgcc-s1", "arm64", "libc6"),
		pkg("liblzma5", "amd64", "kmod"),
		pkg("busybox-tool", "amd64"),
		// Architecture: all: netbase is needed by e2fsprogs on amd64 only, tzdata by kmod everywhere.
		pkg("netbase", "all", "e2fsprogs:amd64"),
		pkg("tzdata", "all", "kmod"),
	}}
	cases := []struct {
		names []string
		arch  contract.Arch
		want  string // names, or the error text
	}{
		{[]string{"kernel-amd64"}, contract.AMD64, "kernel-amd64 kmod libc6 libgcc-s1 liblzma5 tzdata"},
		{[]string{"kernel-arm64"}, contract.ARM64, "kernel-arm64 kmod libc6 libgcc-s1 tzdata"},
		{[]string{"e2fsprogs", "e2fsprogs"}, contract.AMD64, "e2fsprogs libc6 libgcc-s1 netbase"},
		{[]string{"e2fsprogs"}, contract.ARM64, "e2fsprogs libc6 libgcc-s1"},
		{[]string{"busybox-static"}, contract.AMD64, "busybox-static"},
		{[]string{"busybox-static"}, contract.ARM64, "busybox-static"},
		{[]string{"tzdata"}, contract.ARM64, "tzdata"},
		{nil, contract.ARM64, ""},
		{[]string{"nope"}, contract.AMD64, "lock x.lock: package nope is not pinned for amd64"},
		{[]string{"kernel-amd64"}, contract.ARM64, "lock x.lock: package kernel-amd64 is not pinned for arm64"},
		{[]string{"busybox-tool"}, contract.ARM64, "package busybox-tool is not pinned for arm64"},
	}
	for _, c := range cases {
		got, err := l.Closure(c.names, c.arch)
		if err != nil {
			if c.want == "" || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Closure(%v, %s): %v, want %q", c.names, c.arch, err, c.want)
			}
			continue
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
			if p.Arch != c.arch.Info().Debian && p.Arch != ArchAll {
				t.Errorf("Closure(%v, %s) has %s of %s", c.names, c.arch, p.Name, p.Arch)
			}
		}
		if s := strings.Join(names, " "); s != c.want {
			t.Errorf("Closure(%v, %s) = %s, want %s", c.names, c.arch, s, c.want)
		}
	}
	amd64Only := &Lock{path: "old.lock", Architectures: []contract.Arch{contract.AMD64}, Packages: l.Packages[:1]}
	if _, err := amd64Only.Closure([]string{"busybox-static"}, contract.ARM64); err == nil ||
		!strings.Contains(err.Error(), "lock old.lock: architecture arm64 is not locked") {
		t.Errorf("Closure for an architecture the lock lacks: %v", err)
	}
}
