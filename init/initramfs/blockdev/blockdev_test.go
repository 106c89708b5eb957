package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/testutil"
)

const (
	rootUUID   = "6e2d0e3a-2f44-4a6c-9d0b-4a1f0c6d7e81"
	verityUUID = "0b7c5b3e-9a1d-4f0e-8c2b-7d6e5f4a3b2c"
	dataUUID   = "a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3"
	otherUUID  = "11111111-2222-4333-8444-555555555555"
)

// makeImage writes a 32 MiB GPT image with sgdisk; parts are PARTUUIDs for 4 MiB partitions.
func makeImage(t *testing.T, path string, uuids ...string) {
	t.Helper()
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 32<<20); err != nil {
		t.Fatal(err)
	}
	var args []string
	for i, u := range uuids {
		n := i + 1
		args = append(args, fmt.Sprintf("-n%d:0:+4M", n), fmt.Sprintf("-u%d:%s", n, u), fmt.Sprintf("-c%d:part%d", n, n))
	}
	testutil.Run(t, sgdisk, append(args, path)...)
}

// fakeSys is a sysfs tree with disks whose /dev nodes are image files.
type fakeSys struct {
	t         *testing.T
	sys, dev  string
	nextMinor int
}

func newFakeSys(t *testing.T) *fakeSys {
	root := t.TempDir()
	f := &fakeSys{t: t, sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
	for _, d := range []string{filepath.Join(f.sys, "class", "block"), f.dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fakeSys) write(path, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// addDisk creates the disk's image and its sysfs entries; partNames are the kernel's names for
// partitions 1..n (they come from sysfs, never from a naming rule).
func (f *fakeSys) addDisk(name string, uuids []string, partNames ...string) {
	makeImage(f.t, filepath.Join(f.dev, name), uuids...)
	d := filepath.Join(f.sys, "class", "block", name)
	f.write(filepath.Join(d, "dev"), fmt.Sprintf("254:%d", f.nextMinor))
	f.write(filepath.Join(d, "size"), "65536")
	f.write(filepath.Join(d, "queue", "logical_block_size"), "512")
	f.nextMinor += 16
	for i, pn := range partNames {
		f.addPartition(name, pn, i+1)
	}
}

func (f *fakeSys) addPartition(disk, part string, n int) {
	d := filepath.Join(f.sys, "class", "block", disk, part)
	f.write(filepath.Join(d, "partition"), fmt.Sprint(n))
	f.write(filepath.Join(d, "dev"), fmt.Sprintf("259:%d", f.nextMinor+n))
	f.write(filepath.Join(d, "start"), fmt.Sprint(2048+(n-1)*8192))
}

func (f *fakeSys) scanner() Scanner {
	return Scanner{SysDir: f.sys, DevDir: f.dev, Interval: 10 * time.Millisecond,
		node: func(string, uint32, uint32) error { return nil }}
}

func TestWait(t *testing.T) {
	want := map[string]string{"root": rootUUID, "verity": strings.ToUpper(verityUUID), "data": dataUUID}
	tests := []struct {
		name    string
		setup   func(f *fakeSys)
		want    map[string]string // role → Dev, relative to DevDir
		wantErr []string
	}{
		{
			name: "all present, nvme naming from sysfs",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{otherUUID, rootUUID, dataUUID}, "vda1", "vda2", "vda3")
				f.addDisk("nvme0n1", []string{verityUUID}, "nvme0n1p1")
			},
			want: map[string]string{"root": "vda2", "verity": "nvme0n1p1", "data": "vda3"},
		},
		{
			name: "kernel has not added partition 3",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{verityUUID, rootUUID, dataUUID}, "vda1", "vda2")
			},
			wantErr: []string{"data partition PARTUUID=" + dataUUID + " not found after 200ms"},
		},
		{
			name: "several missing are all named",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{rootUUID}, "vda1")
			},
			wantErr: []string{
				"data partition PARTUUID=" + dataUUID + " not found after 200ms",
				"verity partition PARTUUID=" + verityUUID + " not found after 200ms",
			},
		},
		{
			name: "partition appears late",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{verityUUID, rootUUID, dataUUID}, "vda1", "vda2")
				go func() {
					time.Sleep(50 * time.Millisecond)
					f.addPartition("vda", "vda3", 3)
				}()
			},
			want: map[string]string{"root": "vda2", "verity": "vda1", "data": "vda3"},
		},
		{
			name: "same PARTUUID on two disks",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{verityUUID, rootUUID, dataUUID}, "vda1", "vda2", "vda3")
				f.addDisk("vdb", []string{dataUUID}, "vdb1")
			},
			wantErr: []string{"data partition PARTUUID=" + dataUUID + " found twice, on "},
		},
		{
			name: "unreadable disk is reported with the missing ones",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{verityUUID, rootUUID}, "vda1", "vda2")
				f.addDisk("vdb", []string{dataUUID}, "vdb1")
				os.Remove(filepath.Join(f.dev, "vdb"))
			},
			wantErr: []string{"data partition PARTUUID=" + dataUUID + " not found after 200ms", "vdb: no such file"},
		},
		{
			name: "kernel and GPT disagree on the start",
			setup: func(f *fakeSys) {
				f.addDisk("vda", []string{verityUUID, rootUUID, dataUUID}, "vda1", "vda2", "vda3")
				f.write(filepath.Join(f.sys, "class", "block", "vda", "vda3", "start"), "4096")
			},
			wantErr: []string{"not found after", "partition 3 starts at byte"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // sgdisk sleeps a second after every write
			f := newFakeSys(t)
			tc.setup(f)
			got, err := f.scanner().Wait(context.Background(), want, 200*time.Millisecond)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Wait succeeded with %+v, want error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for role, dev := range tc.want {
				p := got[role]
				if p.Dev != filepath.Join(f.dev, dev) {
					t.Errorf("%s: Dev = %s, want %s", role, p.Dev, filepath.Join(f.dev, dev))
				}
				if p.PartUUID != strings.ToLower(want[role]) {
					t.Errorf("%s: PartUUID = %s", role, p.PartUUID)
				}
				if p.Size != 4<<20 || p.Start != int64(2048+(p.Number-1)*8192)*512 {
					t.Errorf("%s: start/size = %d/%d", role, p.Start, p.Size)
				}
				if p.Major != 259 || p.Name != fmt.Sprintf("part%d", p.Number) {
					t.Errorf("%s: %+v", role, p)
				}
			}
		})
	}
}

// The disk appears only once Rescan (the initramfs loading the driver its controller asks for)
// has run; Rescan is not called once everything is found.
func TestWaitRescans(t *testing.T) {
	f := newFakeSys(t)
	want := map[string]string{"root": rootUUID, "verity": verityUUID, "data": dataUUID}
	var calls int
	s := f.scanner()
	s.Rescan = func() {
		calls++
		if calls == 2 {
			f.addDisk("sda", []string{verityUUID, rootUUID, dataUUID}, "sda1", "sda2", "sda3")
		}
	}
	got, err := s.Wait(context.Background(), want, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || got["data"].Dev != filepath.Join(f.dev, "sda3") {
		t.Errorf("%d rescans, data on %s: want 2 rescans and sda3", calls, got["data"].Dev)
	}
}

func TestWaitRejectsBadUUID(t *testing.T) {
	_, err := Scanner{SysDir: t.TempDir()}.Wait(context.Background(), map[string]string{"root": "not-a-uuid"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), `root partition PARTUUID="not-a-uuid"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestWaitHonoursCancel(t *testing.T) {
	f := newFakeSys(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.scanner().Wait(ctx, map[string]string{"root": rootUUID}, time.Hour)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v", err)
	}
}

// TestLoopDevice runs the real sysfs scan against loop devices with 512- and 4096-byte logical
// sectors, with nodes created by mknod in a private directory (as when devtmpfs has not made them)
// and with the real /dev.
func TestLoopDevice(t *testing.T) {
	testutil.Root(t, "loop devices")
	sgdisk := testutil.Tool(t, "sgdisk", "gdisk")
	partx := testutil.Tool(t, "partx", "util-linux")
	for _, sector := range []int{512, 4096} {
		t.Run(fmt.Sprintf("%d-byte sectors", sector), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 32<<20); err != nil {
				t.Fatal(err)
			}
			loop := testutil.Loop(t, img, "-P", "--sector-size", fmt.Sprint(sector))
			// Partitioned through the loop device so sgdisk uses its sector size.
			testutil.Run(t, sgdisk, "-n1:0:+4M", "-u1:"+verityUUID, "-n2:0:+4M", "-u2:"+rootUUID, "-c2:root-a", "-n3:0:+4M", "-u3:"+dataUUID, loop)
			if _, err := os.Stat(loop + "p1"); errors.Is(err, os.ErrNotExist) {
				// Kernels without the GPT parser ignore sgdisk's re-read; partx adds via BLKPG.
				testutil.Run(t, partx, "-a", loop)
			}
			for _, devDir := range []string{"/dev", t.TempDir()} {
				checkLoopScan(t, loop, devDir)
			}
		})
	}
}

func checkLoopScan(t *testing.T, loop, devDir string) {
	t.Helper()
	got, err := Scanner{DevDir: devDir}.Wait(context.Background(), map[string]string{"root": rootUUID, "data": dataUUID}, 5*time.Second)
	if err != nil {
		t.Fatalf("DevDir %s: %v", devDir, err)
	}
	base := filepath.Base(loop)
	for role, n := range map[string]int{"root": 2, "data": 3} {
		p := got[role]
		wantDev := filepath.Join(devDir, fmt.Sprintf("%sp%d", base, n))
		if p.Dev != wantDev || p.Disk != filepath.Join(devDir, base) || p.Number != n || p.Size != 4<<20 || p.Start != int64(1+4*(n-1))<<20 {
			t.Errorf("%s: %+v, want Dev %s, 4 MiB at %d MiB", role, p, wantDev, 1+4*(n-1))
		}
		if role == "root" && p.Name != "root-a" {
			t.Errorf("root: name %q", p.Name)
		}
		sysDev, err := os.ReadFile(fmt.Sprintf("/sys/class/block/%sp%d/dev", base, n))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(sysDev)) != fmt.Sprintf("%d:%d", p.Major, p.Minor) {
			t.Errorf("%s: %d:%d, sysfs says %s", role, p.Major, p.Minor, sysDev)
		}
		// The node must lead to the partition itself.
		fd, err := os.Open(p.Dev)
		if err != nil {
			t.Fatal(err)
		}
		size, _ := fd.Seek(0, 2)
		fd.Close()
		if size != p.Size {
			t.Errorf("%s: node %s has %d bytes, want %d", role, p.Dev, size, p.Size)
		}
	}
}
