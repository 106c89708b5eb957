package debian

import (
	"strings"
	"testing"
)

func TestLockChanges(t *testing.T) {
	pkg := func(name, arch, version, sum string) Package {
		return Package{Name: name, Arch: arch, Version: version, SHA256: strings.Repeat(sum, 64)}
	}
	before := []Package{pkg("kept", "amd64", "1", "a"), pkg("bumped", "amd64", "1", "a"), pkg("rebuilt", "amd64", "1", "a"),
		pkg("dropped", "amd64", "1", "a"), pkg("bumped", "arm64", "1", "a"), pkg("shared", "amd64", "1", "a")}
	after := []Package{pkg("added", "amd64", "2", "b"), pkg("bumped", "amd64", "2", "b"), pkg("kept", "amd64", "1", "a"),
		pkg("rebuilt", "amd64", "1", "c"), pkg("bumped", "arm64", "1", "a"), pkg("kept", "arm64", "1", "d"), pkg("shared", "all", "1", "a")}
	got := strings.Join(lockChanges(before, after), "\n")
	want := strings.Join([]string{
		"+ added:amd64 2",
		"~ bumped:amd64 1 -> 2",
		"! rebuilt:amd64 1: same version, new sha256 " + strings.Repeat("c", 64) + " (was " + strings.Repeat("a", 64) + ")",
		"+ kept:arm64 1",
		"+ shared:all 1",
		"- dropped:amd64 1",
		"- shared:amd64 1",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
