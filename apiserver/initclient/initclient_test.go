package initclient

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func logFixture(t *testing.T) (Files, string, string) {
	t.Helper()
	dir, vol := filepath.Join(t.TempDir(), "persistent"), filepath.Join(t.TempDir(), "volatile")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(vol, 0o755)
	return Files{Dir: dir, Volatile: vol, Poll: 5 * time.Millisecond}, dir, vol
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, f Files, source string, o LogOptions) string {
	t.Helper()
	r, err := f.Logs(context.Background(), source, o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLogsOrderAndList(t *testing.T) {
	f, dir, vol := logFixture(t)
	writeFile(t, filepath.Join(dir, "kernel.log.2"), "k1\nk2\n")
	writeFile(t, filepath.Join(dir, "kernel.log.10"), "k0\n")
	writeFile(t, filepath.Join(dir, "kernel.log.1"), "k3\n")
	writeFile(t, filepath.Join(dir, "kernel.log"), "k4\nk5 cut sh")
	writeFile(t, filepath.Join(vol, "kernel.log"), "k6\n")
	writeFile(t, filepath.Join(vol, "apiserver.log"), "a1\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "x\n")
	writeFile(t, filepath.Join(dir, "kernel.log.x"), "x\n")

	if got, err := f.List(); err != nil || !reflect.DeepEqual(got, []string{"apiserver", "kernel"}) {
		t.Errorf("List = %q, %v", got, err)
	}
	// The cut line gets its newline, so the next file's first line stays a line of its own.
	if got := readAll(t, f, "kernel", LogOptions{}); got != "k0\nk1\nk2\nk3\nk4\nk5 cut sh\nk6\n" {
		t.Errorf("kernel log = %q", got)
	}
	for _, tt := range []struct {
		lines int
		want  string
	}{
		{1, "k6\n"},
		{2, "k5 cut sh\nk6\n"},
		{3, "k4\nk5 cut sh\nk6\n"},
		{6, "k1\nk2\nk3\nk4\nk5 cut sh\nk6\n"},
		{100, "k0\nk1\nk2\nk3\nk4\nk5 cut sh\nk6\n"},
	} {
		if got := readAll(t, f, "kernel", LogOptions{Lines: tt.lines}); got != tt.want {
			t.Errorf("last %d lines = %q, want %q", tt.lines, got, tt.want)
		}
	}
	// A cut last line counts as a line, and gets its newline.
	writeFile(t, filepath.Join(vol, "apiserver.log"), "a1\na2\na3 cut")
	if got := readAll(t, f, "apiserver", LogOptions{Lines: 2}); got != "a2\na3 cut\n" {
		t.Errorf("last 2 lines with a cut one = %q", got)
	}

	files, err := f.LogFiles()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, lf := range files {
		names = append(names, lf.Name)
	}
	want := []string{"kernel.log.10", "kernel.log.2", "kernel.log.1", "kernel.log", "volatile/apiserver.log", "volatile/kernel.log"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("LogFiles = %q, want %q", names, want)
	}

	ctx := context.Background()
	for _, bad := range []string{"../etc/passwd", "", "a/b", "x..y"} {
		if _, err := f.Logs(ctx, bad, LogOptions{}); err == nil || !strings.Contains(err.Error(), "not a log source name") {
			t.Errorf("Logs(%q) = %v", bad, err)
		}
	}
	if _, err := f.Logs(ctx, "missing", LogOptions{Follow: true}); !errors.Is(err, ErrNoLog) {
		t.Errorf("Logs of a source without a log = %v", err)
	}
	// No directories at all: nothing to list, no error.
	none := Files{Dir: filepath.Join(t.TempDir(), "a"), Volatile: filepath.Join(t.TempDir(), "b")}
	if got, err := none.List(); err != nil || len(got) != 0 {
		t.Errorf("List without directories = %q, %v", got, err)
	}
}

// Following a log across rotations, the way the system init rotates: rename the current file
// to .1 after its last line, then make a new one.
func TestFollowAcrossRotation(t *testing.T) {
	f, dir, _ := logFixture(t)
	path := filepath.Join(dir, "containerd.log")
	writeFile(t, filepath.Join(dir, "containerd.log.1"), "old\n")
	writeFile(t, path, "line 1\nline 2\n")
	ctx, cancel := context.WithCancel(context.Background())
	r, err := f.Logs(ctx, "containerd", LogOptions{Follow: true, Lines: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	br := bufio.NewReader(r)
	next := func(want string) {
		t.Helper()
		done := make(chan struct{})
		var l string
		var err error
		go func() { l, err = br.ReadString('\n'); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("waiting for %q", want)
		}
		if l != want {
			t.Fatalf("read %q, %v; want %q", l, err, want)
		}
	}
	appendTo := func(p, s string) {
		fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteString(s)
		fh.Close()
	}
	next("line 2\n")
	appendTo(path, "line 3\n")
	next("line 3\n")
	for round := range 3 {
		// The last lines before a rotation reach the old file just before it is renamed.
		appendTo(path, "before rotation "+string(rune('a'+round))+"\n")
		os.Rename(path+".1", path+".2")
		os.Rename(path, path+".1")
		appendTo(path, "after rotation "+string(rune('a'+round))+"\n")
		next("before rotation " + string(rune('a'+round)) + "\n")
		next("after rotation " + string(rune('a'+round)) + "\n")
	}
	// A truncated file is read again from its start.
	writeFile(t, path, "new\n")
	next("new\n")
	cancel()
	if _, err := br.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("read after cancel = %v, want EOF", err)
	}
}
