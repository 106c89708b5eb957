package format

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

var ovaOpts = func() Options {
	o := testOpts
	o.Name, o.Version, o.Description = "ballast-vmware", "0.1.0", `Ballast for <vSphere> & "friends"`
	return o
}()

// TestOVA converts disks to OVAs and checks them with tools that are not ours: GNU tar unpacks
// them (in order), the manifest's digests match the unpacked files, and qemu-img reads the VMDK
// as the raw disk; then CheckOVA.
func TestOVA(t *testing.T) {
	needQemuImg(t)
	tarTool := gnuTar(t)
	for _, size := range []int64{64 * mib, 3*mib + 7*512} {
		raw := makeDisk(t, size, testPatches(size))
		dir := t.TempDir()
		out := filepath.Join(dir, "disk.ova")
		if err := Convert(context.Background(), raw, out, OVA, ovaOpts); err != nil {
			t.Fatal(err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 1 {
			t.Errorf("output directory holds %v, want disk.ova alone", left)
		}
		list := testutil.Run(t, tarTool, "--utc", "-tvf", out)
		re := regexp.MustCompile(`(?m)^-rw-r--r-- 0/0 +\d+ 2024-05-06 07:08 (\S+)$`)
		var names []string
		for _, m := range re.FindAllStringSubmatch(list, -1) {
			names = append(names, m[1])
		}
		if got := strings.Join(names, " "); got != "ballast-vmware.ovf ballast-vmware.mf ballast-vmware-disk1.vmdk" {
			t.Fatalf("tar -tvf lists %q:\n%s", got, list)
		}
		x := t.TempDir()
		testutil.Run(t, tarTool, "-xf", out, "-C", x)
		mf, err := os.ReadFile(filepath.Join(x, "ballast-vmware.mf"))
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, n := range []string{"ballast-vmware.ovf", "ballast-vmware-disk1.vmdk"} {
			b, err := os.ReadFile(filepath.Join(x, n))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			want.WriteString("SHA256(" + n + ")= " + hex.EncodeToString(sum[:]) + "\n")
		}
		if string(mf) != want.String() {
			t.Errorf("manifest\n%s\nwant\n%s", mf, want.String())
		}
		vmdk := filepath.Join(x, "ballast-vmware-disk1.vmdk")
		qemuImg(t, "check", "-f", "vmdk", vmdk)
		qemuImg(t, "compare", "-f", "raw", "-F", "vmdk", raw, vmdk)
		info := infoOf(t, "-f", "vmdk", vmdk)
		if info.VirtualSize != size || info.Specific.Data["create-type"] != "streamOptimized" {
			t.Errorf("qemu-img info: size %d, %v; want %d, streamOptimized", info.VirtualSize, info.Specific.Data, size)
		}
		ovf, err := os.ReadFile(filepath.Join(x, "ballast-vmware.ovf"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ovf), `ovf:capacity="`+itoa(size)+`" ovf:capacityAllocationUnits="byte"`) {
			t.Errorf("descriptor lacks the capacity %d:\n%s", size, ovf)
		}
		xmllint(t, filepath.Join(x, "ballast-vmware.ovf"))
		if err := CheckOVA(out); err != nil {
			t.Error(err)
		}

		again := filepath.Join(t.TempDir(), "disk.ova")
		if err := Convert(context.Background(), raw, again, OVA, ovaOpts); err != nil {
			t.Fatal(err)
		}
		if fileHash(t, out) != fileHash(t, again) {
			t.Error("two conversions differ")
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// xmllint checks a file is namespace-well-formed XML with libxml2, a parser stricter than
// encoding/xml about undeclared prefixes.
func xmllint(t *testing.T, path string) {
	t.Helper()
	testutil.Run(t, testutil.Tool(t, "xmllint", "libxml2-utils"), "--noout", path)
}

// The descriptor is UTF-8 XML whose texts come back as given, markup characters included.
func TestOVADescriptorTexts(t *testing.T) {
	d, err := ovfDescriptor(ovfParams{Name: "n", Version: "1.2.3+g<x>", Description: ovaOpts.Description, VMDK: "n-disk1.vmdk", VMDKSize: 1, Capacity: 512})
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Annotation string `xml:"VirtualSystem>AnnotationSection>Annotation"`
		Version    string `xml:"VirtualSystem>ProductSection>Version"`
	}
	if err := xml.Unmarshal(d, &env); err != nil {
		t.Fatal(err)
	}
	if env.Annotation != ovaOpts.Description || env.Version != "1.2.3+g<x>" {
		t.Errorf("annotation %q, version %q", env.Annotation, env.Version)
	}
	// Without a description or a version, the elements are left out rather than empty.
	d, err = ovfDescriptor(ovfParams{Name: "n", VMDK: "n-disk1.vmdk", VMDKSize: 1, Capacity: 512})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(d); strings.Contains(s, "AnnotationSection") || strings.Contains(s, "<Version>") {
		t.Errorf("empty sections:\n%s", s)
	}
}

func TestOVANames(t *testing.T) {
	raw := makeDisk(t, mib, testPatches(mib))
	for _, tc := range []struct {
		name, out, want, wantErr string
	}{
		{name: "", out: "disk.ova", want: "disk.ovf disk.mf disk-disk1.vmdk"},
		{name: "ballast-aws", out: "x.ova", want: "ballast-aws.ovf ballast-aws.mf ballast-aws-disk1.vmdk"},
		{name: "a b", out: "x.ova", wantErr: `name "a b"`},
		{name: "../x", out: "x.ova", wantErr: `name "../x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOpts
			o.Name = tc.name
			dir := t.TempDir()
			out := filepath.Join(dir, tc.out)
			err := Convert(context.Background(), raw, out, OVA, o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Convert = %v, want %q", err, tc.wantErr)
				}
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Errorf("left %v behind", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range readTar(t, out) {
				names = append(names, e.hdr.Name)
				if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.Mode != 0o644 || !e.hdr.ModTime.Equal(testOpts.Time) || e.hdr.Format != tar.FormatUSTAR {
					t.Errorf("%s: header %+v", e.hdr.Name, e.hdr)
				}
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Errorf("entries %q, want %q", got, tc.want)
			}
		})
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, path string) []tarEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The raw header: ustar's magic and version, "ustar\0" "00", not GNU's "ustar " " \0".
	var block [512]byte
	if _, err := io.ReadFull(f, block[:]); err != nil {
		t.Fatal(err)
	}
	if got := string(block[257:265]); got != "ustar\x0000" {
		t.Errorf("tar magic %q, want POSIX ustar", got)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var entries []tarEntry
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tarEntry{hdr, b})
	}
}

// writeTar writes entries as an OVA would have them, the manifest recomputed when fixMF.
func writeTar(t *testing.T, entries []tarEntry, fixMF bool, format tar.Format) string {
	t.Helper()
	if fixMF {
		var mf strings.Builder
		for _, e := range entries {
			if !strings.HasSuffix(e.hdr.Name, ".mf") {
				sum := sha256.Sum256(e.data)
				mf.WriteString("SHA256(" + e.hdr.Name + ")= " + hex.EncodeToString(sum[:]) + "\n")
			}
		}
		for i, e := range entries {
			if strings.HasSuffix(e.hdr.Name, ".mf") {
				entries[i].data = []byte(mf.String())
			}
		}
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := *e.hdr
		hdr.Size, hdr.Format = int64(len(e.data)), format
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bad.ova")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckOVA breaks a good OVA one way at a time; CheckOVA must name each problem.
func TestCheckOVA(t *testing.T) {
	raw := makeDisk(t, 3*mib, testPatches(3*mib))
	good := filepath.Join(t.TempDir(), "disk.ova")
	if err := Convert(context.Background(), raw, good, OVA, ovaOpts); err != nil {
		t.Fatal(err)
	}
	if err := CheckOVA(good); err != nil {
		t.Fatalf("good OVA: %v", err)
	}
	edit := func(old, new string) func(*testing.T, []tarEntry) []tarEntry {
		return func(t *testing.T, es []tarEntry) []tarEntry {
			if !bytes.Contains(es[0].data, []byte(old)) {
				t.Fatalf("descriptor lacks %q", old)
			}
			es[0].data = bytes.Replace(es[0].data, []byte(old), []byte(new), 1)
			return es
		}
	}
	tests := []struct {
		name   string
		change func(*testing.T, []tarEntry) []tarEntry
		keepMF bool
		format tar.Format
		want   string
	}{
		{name: "disk on the memory", change: edit("<rasd:Parent>3</rasd:Parent>", "<rasd:Parent>2</rasd:Parent>"), want: "disk Item 5: Parent 2 has ResourceType 4"},
		{name: "disk on nothing", change: edit("<rasd:Parent>3</rasd:Parent>", "<rasd:Parent>9</rasd:Parent>"), want: `disk Item 5: Parent "9" is no Item`},
		{name: "bios", change: edit(`vmw:value="efi"`, `vmw:value="bios"`), want: `firmware "bios", want efi`},
		{name: "no user-data", change: edit(`ovf:key="user-data"`, `ovf:key="userdata"`), want: "no ProductSection property user-data"},
		{name: "user-data fixed", change: edit(`ovf:userConfigurable="true"`, `ovf:userConfigurable="false"`), want: "property user-data has type"},
		{name: "file size", change: edit(`ovf:id="file1" ovf:size="`, `ovf:id="file1" ovf:size="1`), want: "References: File ballast-vmware-disk1.vmdk: size 1"},
		{name: "capacity", change: edit(`ovf:capacity="`, `ovf:capacity="1`), want: "capacity 1"},
		{name: "capacity units", change: edit(`ovf:capacityAllocationUnits="byte"`, `ovf:capacityAllocationUnits="byte * 2^20"`), want: "capacity 3298534883328 bytes"},
		{name: "fileRef", change: edit(`ovf:fileRef="file1"`, `ovf:fileRef="file2"`), want: `Disk vmdisk1: fileRef "file2" names no File`},
		{name: "host resource", change: edit("ovf:/disk/vmdisk1", "ovf:/disk/vmdisk2"), want: `HostResource "ovf:/disk/vmdisk2" names no Disk`},
		{name: "no iso transport", change: edit(`ovf:transport="iso"`, ""), want: "lacks iso"},
		{name: "rasd order", change: edit("<rasd:InstanceID>7</rasd:InstanceID>\n        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>", "<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>\n        <rasd:InstanceID>7</rasd:InstanceID>"), want: "Item 7: InstanceID after ResourceSubType"},
		{name: "network", change: edit("<rasd:Connection>VM Network</rasd:Connection>", "<rasd:Connection>LAN</rasd:Connection>"), want: `Connection "LAN" is not in the NetworkSection`},
		{name: "scsi type", change: edit("<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>", "<rasd:ResourceSubType>nvme</rasd:ResourceSubType>"), want: `SCSI controller type "nvme"`},
		{name: "duplicate instance", change: edit("<rasd:InstanceID>6</rasd:InstanceID>", "<rasd:InstanceID>5</rasd:InstanceID>"), want: `InstanceID "5" missing or repeated`},
		{name: "streamOptimized", change: edit("vmdk.html#streamOptimized", "vmdk.html#monolithicSparse"), want: `format monolithicSparse, but ballast-vmware-disk1.vmdk's descriptor says createType`},
		{name: "malformed", change: edit("</Envelope>", "</Envelop>"), want: "not an OVF envelope"},
		{name: "trailing junk", change: edit("</Envelope>\n", "</Envelope>\n<x/>"), want: "content after the envelope"},
		{name: "manifest digest", change: edit("<Info>A virtual machine</Info>", "<Info>A VM</Info>"), keepMF: true, want: "ballast-vmware.ovf has SHA-256"},
		{name: "manifest line", change: func(t *testing.T, es []tarEntry) []tarEntry {
			es[1].data = append(es[1].data, "MD5(x)= 00\n"...)
			return es
		}, keepMF: true, want: `"MD5(x)= 00" is not SHA256(file)= digest`},
		{name: "manifest first", change: func(t *testing.T, es []tarEntry) []tarEntry {
			es[0], es[1] = es[1], es[0]
			return es
		}, want: "first entry ballast-vmware.mf: want the .ovf descriptor"},
		{name: "stray file", change: func(t *testing.T, es []tarEntry) []tarEntry {
			return append(es, tarEntry{&tar.Header{Name: "extra.iso", Mode: 0o644, Typeflag: tar.TypeReg}, []byte("x")})
		}, want: "archive entry extra.iso is not in References"},
		{name: "missing disk", change: func(t *testing.T, es []tarEntry) []tarEntry { return es[:2] }, want: "File ballast-vmware-disk1.vmdk is not in the archive"},
		{name: "gnu tar", change: func(t *testing.T, es []tarEntry) []tarEntry { return es }, format: tar.FormatGNU, want: "not plain ustar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := tt.format
			if format == 0 {
				format = tar.FormatUSTAR
			}
			bad := writeTar(t, tt.change(t, readTar(t, good)), !tt.keepMF, format)
			err := CheckOVA(bad)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckOVA = %v\nwant %q", err, tt.want)
			}
		})
	}
	// Rewritten unchanged, it passes: the breakage, not the rewriting, is what fails above.
	if err := CheckOVA(writeTar(t, readTar(t, good), false, tar.FormatUSTAR)); err != nil {
		t.Errorf("rewritten OVA: %v", err)
	}
}
