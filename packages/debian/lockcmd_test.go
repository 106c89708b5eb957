package debian

import (
	"strings"
	"testing"
)

func TestLockChanges(t *testing.T) {
	pkg := func(name, version, sum string) Package {
		return Package{Name: name, Version: version, SHA256: strings.Repeat(sum, 64)}
	}
	before := []Package{pkg("kept", "1", "a"), pkg("bumped", "1", "a"), pkg("rebuilt", "1", "a"), pkg("dropped", "1", "a")}
	after := []Package{pkg("added", "2", "b"), pkg("bumped", "2", "b"), pkg("kept", "1", "a"), pkg("rebuilt", "1", "c")}
	got := strings.Join(lockChanges(before, after), "\n")
	want := strings.Join([]string{
		"+ added 2",
		"~ bumped 1 -> 2",
		"! rebuilt 1: same version, new sha256 " + strings.Repeat("c", 64) + " (was " + strings.Repeat("a", 64) + ")",
		"- dropped 1",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
