package filecon

import (
	"bytes"
	"github.com/ballast-os/ballast/tests/testutil"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func ctx(typ string) string { return "system_u:object_r:" + typ + ":s0" }

func load(t *testing.T) *Specs {
	t.Helper()
	s, err := Load("testdata/file_contexts")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLookup(t *testing.T) {
	s := load(t)
	tests := []struct {
		path string
		mode fs.FileMode
		want string // "" for no label
	}{
		{"/", fs.ModeDir, ctx("os_t")},
		{"/", 0, ctx("os_t")}, // "/" -d is for a directory; "/.*" matches "/" too
		{"/usr/bin/x", 0, ctx("os_t")},
		{"/dev", fs.ModeDir, ctx("device_t")},
		{"/dev/null", fs.ModeDevice | fs.ModeCharDevice, ctx("null_device_t")},
		{"/dev/null", 0, ctx("device_t")}, // a regular file there is no character device
		{"/dev/tty1", fs.ModeDevice | fs.ModeCharDevice, ctx("tty_device_t")},
		{"/dev/tty", fs.ModeDevice | fs.ModeCharDevice, ctx("tty_device_t")},
		{"/dev/ttyS0", fs.ModeDevice | fs.ModeCharDevice, ctx("device_t")}, // anchored: tty[0-9]* is not a prefix
		{"/dev/pts", fs.ModeDir, ""},                                       // <<none>>
		{"/dev/pts/0", fs.ModeDevice | fs.ModeCharDevice, ctx("device_t")},
		{"/local", fs.ModeDir, ctx("local_t")},
		{"/localx", fs.ModeDir, ctx("os_t")},
		{"/local/var/lib", fs.ModeDir, ctx("var_lib_t")},
		{"/local/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs", fs.ModeDir, ctx("container_file_t")},
		{"/local/var/lib/containerdx", fs.ModeDir, ctx("var_lib_t")},
		{"/etc/file", 0, ctx("local_t")},
		{"/etc/file", fs.ModeDir, ctx("etc_t")},
		{"/etc/link", fs.ModeSymlink, ctx("os_t")},
		{"/etc/sock", fs.ModeSocket, ctx("local_t")},
		{"/etc/fifo", fs.ModeNamedPipe, ctx("local_t")},
		{"/etc/blk", fs.ModeDevice, ctx("device_t")},
		{"/etc/blk", fs.ModeDevice | fs.ModeCharDevice, ctx("etc_t")},
		{"//etc//file/", 0, ctx("local_t")}, // cleaned first
	}
	for _, tt := range tests {
		got, ok := s.Lookup(tt.path, tt.mode)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q, %v) = %q, %v; want %q", tt.path, tt.mode, got, ok, tt.want)
		}
	}
}

// A hand-written file: exact paths win over regexes wherever they are, and among regexes the
// later line wins, as in libselinux.
func TestLookupHandWritten(t *testing.T) {
	s, err := Parse(strings.NewReader(`# comment

/               system_u:object_r:root_t:s0
/.*             system_u:object_r:os_t:s0
/a(/.*)?        system_u:object_r:a_t:s0
/a/b(/.*)?      system_u:object_r:b_t:s0
/a(/.*)?  -d    system_u:object_r:adir_t:s0
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		mode fs.FileMode
		want string
	}{
		{"/", fs.ModeDir, "root_t"},
		{"/x", 0, "os_t"},
		{"/a/x", 0, "a_t"},
		{"/a/b/x", 0, "b_t"},
		{"/a/b", fs.ModeDir, "adir_t"},
	} {
		got, _ := s.Lookup(tt.path, tt.mode)
		if Type(got) != tt.want {
			t.Errorf("Lookup(%q) = %q, want %s", tt.path, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"/a",
		"/a -x system_u:object_r:a_t:s0",
		"/a -d system_u:object_r:a_t:s0 extra",
		"/a( system_u:object_r:a_t:s0",
		"/a a_t",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Parse(%q) = %v, want an error naming line 1", in, err)
		}
	}
}

// secilc orders its file_contexts so that the most specific line is last: regexes before exact
// paths, shorter fixed prefixes first. The sample must be what secilc makes of its policy, so the
// lookups above test the order secilc really writes.
func TestSecilcOrder(t *testing.T) {
	secilc := testutil.Tool(t, "secilc", "secilc")
	dir := t.TempDir()
	cmd := exec.Command(secilc, "-o", filepath.Join(dir, "policy"), "-f", filepath.Join(dir, "file_contexts"), "testdata/policy.cil")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secilc: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "file_contexts"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/file_contexts")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("secilc writes:\n%s\ntestdata/file_contexts holds:\n%s", got, want)
	}
}
