package userdata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

// fakeBlock lays out a sysfs-like directory and a /dev-like directory whose "device nodes" are
// image files, so the scan can be tested without root. An empty image is a device of size 0;
// devname, when set, is the uevent DEVNAME.
type fakeDev struct {
	name, image, devname string
	noNode               bool // sysfs entry without a device node
}

func fakeBlock(t *testing.T, devs []fakeDev) (sysBlock, devDir string) {
	t.Helper()
	sysBlock, devDir = t.TempDir(), t.TempDir()
	for _, d := range devs {
		sys := filepath.Join(sysBlock, d.name)
		if err := os.MkdirAll(sys, 0o755); err != nil {
			t.Fatal(err)
		}
		node := d.name
		if d.devname != "" {
			node = d.devname
			if err := os.WriteFile(filepath.Join(sys, "uevent"), []byte("MAJOR=1\nDEVNAME="+d.devname+"\nDEVTYPE=disk\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var size int64
		if d.image != "" {
			st, err := os.Stat(d.image)
			if err != nil {
				t.Fatal(err)
			}
			size = st.Size() / 512
		}
		if d.image != "" && !d.noNode {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(devDir, node)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(d.image, filepath.Join(devDir, node)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sys, "size"), []byte(strconv.FormatInt(size, 10)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sysBlock, devDir
}

func TestNoCloudFind(t *testing.T) {
	other := fatImage(t, 2, "", "-F", "12", "-n", "EFI")
	seed := fatImage(t, 2, "[settings]\n", "-F", "12", "-n", "CIDATA")
	iso := isoImage(t, "genisoimage", "cidata", "x")
	zero := filepath.Join(t.TempDir(), "zero")
	if err := os.WriteFile(zero, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		devs    []fakeDev
		want    Device // Path relative to the fake /dev
		wantErr error
	}{
		{"none", []fakeDev{{name: "vda", image: other}, {name: "loop0"}}, Device{}, ErrNotFound},
		{"fat seed", []fakeDev{{name: "vda", image: other}, {name: "vdb", image: seed}}, Device{"vdb", FSVFAT}, nil},
		{"iso seed", []fakeDev{{name: "sr0", image: iso}, {name: "vda", image: zero}}, Device{"sr0", FSISO9660}, nil},
		{"first in name order", []fakeDev{{name: "vdc", image: seed}, {name: "sr0", image: iso}}, Device{"sr0", FSISO9660}, nil},
		{"node in a subdirectory", []fakeDev{{name: "xyz", image: seed, devname: "disk/seed"}}, Device{"disk/seed", FSVFAT}, nil},
		{"missing node is skipped", []fakeDev{{name: "vda", image: seed, noNode: true}, {name: "vdb", image: iso}}, Device{"vdb", FSISO9660}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sysBlock, devDir := fakeBlock(t, tt.devs)
			got, err := NoCloud{SysBlock: sysBlock, DevDir: devDir}.Find(context.Background())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Find = %+v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			if want := (Device{filepath.Join(devDir, tt.want.Path), tt.want.FSType}); got != want {
				t.Fatalf("Find = %+v, want %+v", got, want)
			}
		})
	}
}

// A volume is mounted only after BeforeMount (the boot's modules, vfat among them); a boot without
// one never waits.
func TestNoCloudBeforeMount(t *testing.T) {
	other := fatImage(t, 2, "", "-F", "12", "-n", "EFI")
	seed := fatImage(t, 2, "[settings]\n", "-F", "12", "-n", "CIDATA")
	for _, tt := range []struct {
		name      string
		devs      []fakeDev
		wantCalls int
		wantErr   error
	}{
		{"no volume", []fakeDev{{name: "vda", image: other}}, 0, ErrNotFound},
		// The wait is cut short by the context, which shows it came before the mount.
		{"volume", []fakeDev{{name: "vda", image: other}, {name: "vdb", image: seed}}, 1, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sysBlock, devDir := fakeBlock(t, tt.devs)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			src := NoCloud{SysBlock: sysBlock, DevDir: devDir, RunDir: t.TempDir(), BeforeMount: func(ctx context.Context) error {
				calls++
				cancel()
				return ctx.Err()
			}}
			_, _, err := src.Fetch(ctx)
			if !errors.Is(err, tt.wantErr) || calls != tt.wantCalls {
				t.Errorf("Fetch = %v with %d waits; want %v with %d", err, calls, tt.wantErr, tt.wantCalls)
			}
		})
	}
}

func TestNoCloudWaitHonoursContext(t *testing.T) {
	sysBlock, devDir := fakeBlock(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := NoCloud{SysBlock: sysBlock, DevDir: devDir, Wait: time.Minute}.Find(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("Find = %v after %v; want the context's deadline", err, time.Since(start))
	}
}

// TestNoCloudLoopDevice runs the real scan over /sys/class/block with a loop device. Mounting
// what it finds is TestVM's, in a guest whose kernel has vfat.
func TestNoCloudLoopDevice(t *testing.T) {
	// A label no other device here has, so a real seed volume on this machine cannot match.
	var rnd [4]byte
	rand.Read(rnd[:])
	label := "T" + strings.ToUpper(hex.EncodeToString(rnd[:]))
	img := fatImage(t, 2, "[settings]\nmotd = \"from loop\"\n", "-F", "12", "-n", label)
	loop := testutil.Loop(t, img, "--read-only")

	src := NoCloud{Label: strings.ToLower(label), RunDir: t.TempDir(), Wait: 5 * time.Second}
	dev, err := src.Find(context.Background())
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if dev.Path != loop || dev.FSType != FSVFAT {
		t.Fatalf("Find = %+v, want %s vfat", dev, loop)
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "user-data")
	if _, _, err := File(path).Fetch(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing file: err = %v, want ErrNotFound", err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, origin, err := File(path).Fetch(context.Background()); err != nil || string(b) != "x" || origin != path {
		t.Fatalf("Fetch = %q, %q, %v", b, origin, err)
	}
	if err := os.WriteFile(path, make([]byte, maxRaw+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := File(path).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized file: err = %v", err)
	}
}
