package debian

import (
	"strings"
	"testing"
)

func TestLockClosure(t *testing.T) {
	pkg := func(name string, requiredBy ...string) Package {
		return Package{Name: name, RequiredBy: requiredBy}
	}
	l := &Lock{path: "x.lock", Packages: []Package{
		pkg("busybox-static"),
		pkg("e2fsprogs"),
		pkg("kernel"),
		pkg("kmod", "kernel"),
		pkg("libc6", "kmod", "e2fsprogs", "libgcc-s1", "busybox-tool"),
		pkg("libgcc-s1", "libc6"),
		pkg("liblzma5", "kmod"),
		pkg("busybox-tool"),
	}}
	cases := []struct {
		names []string
		want  string
	}{
		{[]string{"kernel"}, "kernel kmod libc6 libgcc-s1 liblzma5"},
		{[]string{"e2fsprogs", "e2fsprogs"}, "e2fsprogs libc6 libgcc-s1"},
		{[]string{"busybox-static"}, "busybox-static"},
		{nil, ""},
	}
	for _, c := range cases {
		got, err := l.Closure(c.names)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		if s := strings.Join(names, " "); s != c.want {
			t.Errorf("Closure(%v) = %s, want %s", c.names, s, c.want)
		}
	}
	if _, err := l.Closure([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "x.lock: package nope is not pinned") {
		t.Fatalf("unpinned name: %v", err)
	}
}
