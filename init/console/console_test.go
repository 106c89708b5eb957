package console

import (
	"slices"
	"strings"
	"testing"
)

func TestTeeAndRelay(t *testing.T) {
	var out strings.Builder
	w := &Writer{Out: &out, Uptime: func() float64 { return 2.25 }}
	var teed []string
	w.SetTee(func(l string) {
		teed = append(teed, l)
		// The tee may print through the writer's owner without deadlocking it.
		w.mu.Lock()
		w.mu.Unlock()
	})
	w.Milestone("init", "variant=%s", "qemu")
	w.Errorf("mounts: %v", "busy")
	w.Relay("ballast: userdata: none (nocloud: no volume)\n")
	w.Raw("motd line 1\nmotd line 2")
	wantOut := "[  2.250000] ballast: init variant=qemu\n" +
		"[  2.250000] ballast: error: mounts: busy\n" +
		"[  2.250000] ballast: userdata: none (nocloud: no volume)\n" +
		"motd line 1\nmotd line 2\n"
	if out.String() != wantOut {
		t.Errorf("console:\n%s\nwant:\n%s", out.String(), wantOut)
	}
	wantTee := []string{"ballast: init variant=qemu", "ballast: error: mounts: busy",
		"ballast: userdata: none (nocloud: no volume)", "motd line 1", "motd line 2"}
	if !slices.Equal(teed, wantTee) {
		t.Errorf("tee got %q, want %q", teed, wantTee)
	}
	w.SetTee(nil)
	w.Milestone("ready", "")
	if len(teed) != len(wantTee) {
		t.Errorf("tee still called after SetTee(nil): %q", teed)
	}
}
