package mountinfo

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadFileFixture(t *testing.T) {
	mounts, err := ReadFile("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 14 {
		t.Fatalf("got %d mounts, want 14", len(mounts))
	}
	want := Mount{
		ID: 30, Parent: 27, Major: 0, Minor: 26,
		Root: "/", MountPoint: "/var/lib/my data",
		Options:  []string{"rw", "relatime"},
		Optional: []string{"master:3"},
		FSType:   "tmpfs", Source: `my\source`,
		SuperOptions: []string{"rw"},
	}
	if got := mounts[10]; !reflect.DeepEqual(got, want) {
		t.Errorf("escaped line:\n got %+v\nwant %+v", got, want)
	}
	bind := mounts[7]
	if bind.Root != "/var" || bind.MountPoint != "/var" || bind.Major != 254 || bind.Minor != 4 {
		t.Errorf("bind mount = %+v", bind)
	}
	if !mounts[0].ReadOnly() || mounts[1].ReadOnly() {
		t.Error("ReadOnly wrong for / or /dev")
	}
}

func TestAt(t *testing.T) {
	mounts, err := ReadFile("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target string
		wantID int // 0: not mounted
	}{
		{"/", 20},
		{"/dev/pts", 28},
		{"/dev/pts/", 28},
		{"/sys/fs/cgroup", 29},
		{"/run", 33}, // the topmost of two
		{"/tmp", 0},
		{"/dev/shm", 0},
		{"/var/lib/my data", 30},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			m, ok := At(mounts, tt.target)
			if ok != (tt.wantID != 0) || m.ID != tt.wantID {
				t.Errorf("At(%q) = %d, %v; want %d", tt.target, m.ID, ok, tt.wantID)
			}
		})
	}
}

func TestUnder(t *testing.T) {
	mounts, err := ReadFile("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir  string
		want []string
	}{
		{"/local", []string{"/local/mnt", "/local"}},
		{"/var", []string{"/var/lib/my data", "/var"}},
		{"/tmp", nil},
		{"/dev", []string{"/dev/pts", "/dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			var got []string
			for _, m := range Under(mounts, tt.dir) {
				got = append(got, m.MountPoint)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Under(%q) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"no separator", "20 1 253:0 / / ro shared:1 erofs /dev/dm-0 ro", "malformed"},
		{"short", "20 1 253:0 / / ro - erofs", "malformed"},
		{"bad id", "x 1 253:0 / / ro - erofs /dev/dm-0 ro", "mount id"},
		{"bad device", "20 1 2530 / / ro - erofs /dev/dm-0 ro", "major:minor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader("20 1 253:0 / / ro - erofs /dev/dm-0 ro\n" + tt.line + "\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "line 2") {
				t.Errorf("Parse = %v, want line 2 error with %q", err, tt.want)
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	tests := map[string]string{
		`plain`:         "plain",
		`a\040b`:        "a b",
		`tab\011nl\012`: "tab\tnl\n",
		`back\134slash`: `back\slash`,
		`trailing\04`:   `trailing\04`,
		`not\999octal`:  `not\999octal`,
		`\040\040`:      "  ",
	}
	for in, want := range tests {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// The real table of this machine parses, whatever is on it.
func TestSelf(t *testing.T) {
	mounts, err := ReadFile(Self)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := At(mounts, "/"); !ok {
		t.Error("no root mount in", Self)
	}
}
