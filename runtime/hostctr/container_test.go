package hostctr

import (
	"errors"
	"github.com/ballast-os/ballast/tests/testutil"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/relabel"
)

// A container restarts when anything that makes it changes, and only then.
func TestDesiredHash(t *testing.T) {
	m := &Manager{}
	base := contract.HostContainer{Name: "web", Source: "r.example/web:1", Enabled: true, UserData: "aGk="}
	h := m.desiredHost(base, 0, contract.ContainerDefaults{}).hash
	if again := m.desiredHost(base, 0, contract.ContainerDefaults{}).hash; again != h {
		t.Fatal("the same configuration hashes differently")
	}
	changes := map[string]func(*contract.HostContainer, *contract.ContainerDefaults){
		"source":         func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.Source = "r.example/web:2" },
		"user data":      func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.UserData = "aG8=" },
		"superpowered":   func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.Superpowered = true },
		"api access":     func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.APIAccess = true },
		"host network":   func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.HostNetwork = true },
		"user namespace": func(c *contract.HostContainer, _ *contract.ContainerDefaults) { c.UserNS = true },
		"default memory": func(_ *contract.HostContainer, d *contract.ContainerDefaults) { d.Memory = 1 << 30 },
		"default caps": func(_ *contract.HostContainer, d *contract.ContainerDefaults) {
			d.Capabilities = map[string]bool{"CAP_CHOWN": false}
		},
	}
	for name, change := range changes {
		c, d := base, contract.ContainerDefaults{}
		change(&c, &d)
		if m.desiredHost(c, 0, d).hash == h {
			t.Errorf("a change of %s does not restart the container", name)
		}
	}
}

func TestExitText(t *testing.T) {
	for code, want := range map[uint32]string{0: "exit status 0", 3: "exit status 3", 137: "signal: killed", 143: "signal: terminated"} {
		if got := exitText(code); got != want {
			t.Errorf("exitText(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	w := newLineWriter(nil, "x")
	w.Write([]byte("a\npartial"))
	if string(w.buf) != "partial" {
		t.Errorf("held back %q, want the unfinished line", w.buf)
	}
	w.Write(make([]byte, contract.MaxLogText*2))
	if len(w.buf) >= contract.MaxLogText {
		t.Errorf("a line longer than a record is held back whole (%d bytes)", len(w.buf))
	}
	w.Flush()
	if len(w.buf) != 0 {
		t.Error("Flush kept bytes")
	}
}

// The storage tree and the user data get the run's file label, and nothing does without one
// (NoLabels).
func TestPrepareMountsLabels(t *testing.T) {
	testutil.Root(t, "prepareMounts chowns the storage directory")
	// trusted.*: a kernel without SELinux keeps it, on symlinks too.
	xattr := "trusted.ballast-test"
	label := "system_u:object_r:container_file_t:s0:c3,c9"
	for _, tc := range []struct {
		name, label string
	}{{"labels", label}, {"no labels", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{RunDir: t.TempDir(), StorageDir: t.TempDir(), Relabel: relabel.Labeler{Xattr: xattr}}
			old := filepath.Join(m.StorageDir, "web", "data", "old")
			if err := os.MkdirAll(filepath.Dir(old), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(old, []byte("from the last run"), 0o600); err != nil {
				t.Fatal(err)
			}
			d := desired{name: "web", storage: true, userData: []byte("x")}
			mounts, err := m.prepareMounts(d, tc.label)
			if err != nil {
				t.Fatal(err)
			}
			if len(mounts) != 2 {
				t.Fatalf("mounts %+v, want the user data and the storage", mounts)
			}
			for _, p := range []string{mounts[0].Source, mounts[1].Source, filepath.Dir(old), old} {
				buf := make([]byte, 256)
				n, err := unix.Lgetxattr(p, xattr, buf)
				got := ""
				if err == nil {
					got = string(buf[:n])
				} else if !errors.Is(err, unix.ENODATA) {
					t.Fatalf("%s: %v", p, err)
				}
				if got != tc.label {
					t.Errorf("%s labelled %q, want %q", p, got, tc.label)
				}
			}
		})
	}
}
