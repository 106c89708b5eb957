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

func TestLogs(t *testing.T) {
	dir := t.TempDir()
	f := Files{Dir: dir, Poll: 10 * time.Millisecond}
	path := filepath.Join(dir, "containerd.log")
	if err := os.WriteFile(path, []byte("line 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "apiserver.log"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	if got, err := f.List(); err != nil || !reflect.DeepEqual(got, []string{"apiserver", "containerd"}) {
		t.Fatalf("List = %q, %v", got, err)
	}
	ctx := context.Background()
	r, err := f.Logs(ctx, "containerd", false)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "line 1\n" {
		t.Fatalf("log = %q", b)
	}
	r.Close()

	for _, bad := range []string{"../etc/passwd", "", "a/b", "x..y"} {
		if _, err := f.Logs(ctx, bad, false); err == nil || !strings.Contains(err.Error(), "not a service name") {
			t.Errorf("Logs(%q) = %v", bad, err)
		}
	}
	if _, err := f.Logs(ctx, "missing", false); !errors.Is(err, ErrNoLog) {
		t.Fatalf("Logs of a service without a log = %v", err)
	}

	// Following: what is appended arrives; cancelling ends the stream.
	fctx, cancel := context.WithCancel(ctx)
	r, err = f.Logs(fctx, "containerd", true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	br := bufio.NewReader(r)
	if l, _ := br.ReadString('\n'); l != "line 1\n" {
		t.Fatalf("first line %q", l)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		fh, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		fh.WriteString("line 2\n")
		fh.Close()
	}()
	if l, err := br.ReadString('\n'); l != "line 2\n" {
		t.Fatalf("followed line %q, %v", l, err)
	}
	// A truncated log is followed from its new start.
	os.WriteFile(path, []byte("new\n"), 0o600)
	if l, err := br.ReadString('\n'); l != "new\n" {
		t.Fatalf("line after truncation %q, %v", l, err)
	}
	cancel()
	if _, err := br.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("read after cancel = %v, want EOF", err)
	}
}
