package initramfs

import (
	"bytes"
	"errors"
	"github.com/ballast-os/ballast/tests/testutil"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/filecon"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
)

const testXattr = "user.selinux-test"

func TestPolicyVersion(t *testing.T) {
	real, err := os.ReadFile("testdata/policy.33") // secilc's, of init/filecon/testdata/policy.cil
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		want uint32
		err  string
	}{
		{"secilc's", real, 33, ""},
		{"empty", nil, 0, "bad magic"},
		{"elf", []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00"), 0, "bad magic"},
		{"truncated", real[:14], 0, "truncated"},
		{"xen", append(append([]byte{}, real[:8]...), append([]byte("XenFlask"), real[16:]...)...), 0, "not a kernel"},
	}
	for _, tt := range tests {
		got, err := policyVersion(tt.b)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: %d, %v; want %d, %q", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// fakeSelinuxfs records what the loader does to the kernel.
type fakeSelinuxfs struct {
	dir     string
	calls   []string
	failOn  string
	enforce string // what enforce reads after the load
}

func (f *fakeSelinuxfs) loader() policyLoader {
	return policyLoader{
		fsDir: f.dir,
		mount: func() error { f.calls = append(f.calls, "mount"); return nil },
		write: func(path string, b []byte) error {
			name := filepath.Base(path)
			f.calls = append(f.calls, name+" "+string(b[:min(len(b), 1)]))
			if name == f.failOn {
				return unix.EINVAL
			}
			if name == "load" {
				return os.WriteFile(filepath.Join(f.dir, "enforce"), []byte(f.enforce), 0o644)
			}
			return nil
		},
	}
}

func policyRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	b, err := os.ReadFile("testdata/policy.33")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, contract.SELinuxPolicy)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLoadPolicy(t *testing.T) {
	tests := []struct {
		name      string
		noPolicy  bool
		failOn    string
		enforce   string
		wantCalls []string
		wantErr   string
	}{
		// Enforcing before the load: never a policy that is not enforced.
		{name: "loads", enforce: "1", wantCalls: []string{"mount", "enforce 1", "load \x8c"}},
		{name: "no policy", noPolicy: true, wantErr: "read the policy"},
		{name: "enforce refused", failOn: "enforce", wantCalls: []string{"mount", "enforce 1"}, wantErr: "switch to enforcing"},
		{name: "load refused", failOn: "load", wantCalls: []string{"mount", "enforce 1", "load \x8c"}, wantErr: "load /usr/lib/ballast/selinux/policy.33 (version 33"},
		{name: "permissive after", enforce: "0", wantCalls: []string{"mount", "enforce 1", "load \x8c"}, wantErr: "not enforcing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := policyRoot(t)
			if tt.noPolicy {
				os.Remove(filepath.Join(root, contract.SELinuxPolicy))
			}
			f := &fakeSelinuxfs{dir: t.TempDir(), failOn: tt.failOn, enforce: tt.enforce}
			var out bytes.Buffer
			con := &console.Writer{Out: &out, Uptime: func() float64 { return 1 }}
			err := f.loader().loadPolicy(con, root)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if !slices.Equal(f.calls, tt.wantCalls) {
				t.Errorf("calls %q, want %q", f.calls, tt.wantCalls)
			}
			if ok := strings.Contains(out.String(), "ballast: selinux enforcing, policy version 33 (1166 bytes), loaded in "); ok != (err == nil) {
				t.Errorf("console: %q", out.String())
			}
		})
	}
}

func TestStateArgs(t *testing.T) {
	st := State{Data: blockdev.Partition{Dev: "/dev/vda3", Disk: "/dev/vda", PartUUID: "8c3a5a55-0f5e-4d4b-9a0a-0123456789ab", Size: 1 << 30}}
	args := st.Args()
	if !IsStage2(args) || IsStage2(nil) || IsStage2([]string{"quiet"}) {
		t.Errorf("IsStage2 wrong for %q", args)
	}
	got, err := ParseState(args)
	if err != nil || got != st {
		t.Errorf("ParseState(%q) = %+v, %v", args, got, err)
	}
	for _, bad := range [][]string{{Stage2Arg}, {Stage2Arg, "--data-dev=/dev/vda3"}, append(args, "extra"), append(args[:1:1], "--nope=1")} {
		if _, err := ParseState(bad); err == nil {
			t.Errorf("ParseState(%q) succeeded", bad)
		}
	}
}

func TestKeepContainerLabels(t *testing.T) {
	mcs := "system_u:object_r:container_file_t:s0:c3,c9"
	tests := []struct {
		path, label string
		want        bool
	}{
		{"/local/host-containers/admin", mcs, true},
		{"/local/host-containers/admin/rootfs/x", mcs, true},
		{"/local/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1", mcs, true},
		{"/local/var/lib/containerd/x", "system_u:object_r:unlabeled_t:s0", false},
		{"/local/var/lib/ballast", mcs, false},
		{"/local/host-containers", mcs, false},
		{"/local/var/lib/containerdx/y", mcs, false},
	}
	for _, tt := range tests {
		if got := keepContainerLabels(tt.path, tt.label); got != tt.want {
			t.Errorf("keep(%q, %q) = %v", tt.path, tt.label, got)
		}
	}
}

const testContexts = `
/.*                      system_u:object_r:os_t:s0
/etc(/.*)?               system_u:object_r:etc_t:s0
/etc/ssl(/.*)?           system_u:object_r:cert_t:s0
/local(/.*)?             system_u:object_r:local_t:s0
/local/var/lib/ballast(/.*)?  system_u:object_r:state_t:s0
`

func specs(t *testing.T) *filecon.Specs {
	t.Helper()
	fc, err := filecon.Parse(strings.NewReader(testContexts))
	if err != nil {
		t.Fatal(err)
	}
	return fc
}

func mkfiles(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f)
		dir := filepath.Dir(p)
		if strings.HasSuffix(f, "/") {
			dir = p
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if dir == p {
			continue
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Lsetxattr(root, testXattr, []byte("x"), 0); errors.Is(err, unix.ENOTSUP) {
		testutil.Need(t, false, "user xattrs on %s (a tmpfs or ext4 TMPDIR)", root)
	}
}

// Copies carry their factory file's label, or file_contexts' for /etc when it has none.
func TestCopyFactoryLabels(t *testing.T) {
	root := t.TempDir()
	src, dst := filepath.Join(root, "factory"), filepath.Join(root, "etc")
	mkfiles(t, root, "factory/hostname", "factory/ssl/certs/ca.crt", "etc/")
	if err := os.Symlink("hostname", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	special := "system_u:object_r:special_t:s0"
	if err := filecon.Set(filepath.Join(src, "hostname"), testXattr, special); err != nil {
		t.Fatal(err)
	}
	if err := copyFactory(src, dst, "/etc", specs(t), testXattr); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"hostname":         special,
		"ssl":              "system_u:object_r:cert_t:s0",
		"ssl/certs/ca.crt": "system_u:object_r:cert_t:s0",
	} {
		got, err := filecon.Get(filepath.Join(dst, p), testXattr)
		if err != nil || got != want {
			t.Errorf("/etc/%s labelled %q, %v; want %q", p, got, err, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "ssl/certs/ca.crt")); err != nil || string(b) != "factory/ssl/certs/ca.crt" {
		t.Errorf("copy: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "hostname" {
		t.Errorf("link: %q, %v", l, err)
	}
}

// /local is labelled when its root is not (the first boot), and left alone once it is.
func TestLabelLocal(t *testing.T) {
	root := t.TempDir()
	mkfiles(t, root, "local/var/lib/ballast/state", "local/x")
	var out bytes.Buffer
	con := &console.Writer{Out: &out, Uptime: func() float64 { return 1 }}
	fc := specs(t)
	if err := labelLocal(con, root, fc, testXattr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ballast: labels /local (/local was not labelled): 6 of 6 files labelled, 0 container files kept") {
		t.Errorf("console: %q", out.String())
	}
	if got, _ := filecon.Get(filepath.Join(root, "local/var/lib/ballast/state"), testXattr); got != "system_u:object_r:state_t:s0" {
		t.Errorf("state labelled %q", got)
	}
	out.Reset()
	if err := labelLocal(con, root, fc, testXattr); err != nil || out.Len() != 0 {
		t.Errorf("second boot: %v, console %q", err, out.String())
	}
	// A wrong label on a checked directory brings the relabel back.
	if err := filecon.Set(filepath.Join(root, "local/var"), testXattr, "system_u:object_r:os_t:s0"); err != nil {
		t.Fatal(err)
	}
	if err := labelLocal(con, root, fc, testXattr); err != nil || !strings.Contains(out.String(), "(/local/var was not labelled): 1 of 6") {
		t.Errorf("after a wrong label: %v, console %q", err, out.String())
	}
}
