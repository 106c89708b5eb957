package image

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/format"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
)

// ovfEnvironment is ovf-env.xml as vSphere writes it on the OVF environment CD-ROM of a VM
// deployed from an OVA with vApp properties (the property values as the user typed them).
func ovfEnvironment(hostname, userData string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<Environment
     xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id=""
     ve:vCenterId="vm-1042">
   <PlatformSection>
      <Kind>VMware ESXi</Kind>
      <Version>8.0.2</Version>
      <Vendor>VMware, Inc.</Vendor>
      <Locale>en_US</Locale>
   </PlatformSection>
   <PropertySection>
         <Property oe:key="hostname" oe:value="` + hostname + `"/>
         <Property oe:key="user-data" oe:value="` + base64.StdEncoding.EncodeToString([]byte(userData)) + `"/>
   </PropertySection>
   <ve:EthernetAdapterSection>
      <ve:Adapter ve:mac="00:50:56:9a:10:01" ve:network="VM Network" ve:unitNumber="7"/>
   </ve:EthernetAdapterSection>
</Environment>
`
}

// ukiOf copies slot A's UKI out of the disk's ESP (its boot entry in contract.ESPEntries).
func ukiOf(t *testing.T, disk string) string {
	t.Helper()
	mdir := testutil.Tool(t, "mdir", "mtools")
	mcopy := testutil.Tool(t, "mcopy", "mtools")
	off, _ := grownPartition(t, disk, string(contract.PartESP))
	img := fmt.Sprintf("%s@@%d", disk, off)
	out := testutil.Run(t, mdir, "-b", "-i", img, "::/"+contract.ESPEntries)
	var uki string
	for _, p := range strings.Fields(out) {
		if e, err := contract.ParseEntry(path.Base(p)); err == nil && e.Slot == contract.SlotA {
			uki = p
		}
	}
	if uki == "" {
		t.Fatalf("no slot A entry in the ESP's %s:\n%s", contract.ESPEntries, out)
	}
	dst := filepath.Join(t.TempDir(), "uki.efi")
	testutil.Run(t, mcopy, "-i", img, uki, dst)
	return dst
}

// TestVMwarePVSCSIVmxnet3OVF boots the vmware image the way ESXi gives it a VM: the disk on
// VMware's paravirtual SCSI controller, a vmxnet3 NIC, and the OVF environment on a CD-ROM
// (ISO9660 "OVF ENV" holding ovf-env.xml) whose user-data vApp property is the user data. The
// host must find its root on the PVSCSI disk and apply the user data from the OVF environment.
//
// Debian's OVMF has no PVSCSI driver, so it cannot boot from that disk as VMware's firmware
// does: the firmware starts the disk's own slot A UKI as the kernel instead, which then finds
// everything else on the PVSCSI disk by itself.
func TestVMwarePVSCSIVmxnet3OVF(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	dir := variantBuildDir(t, "vmware")
	pki := newProdPKI(t)
	want := "from the ovf environment"
	env := makeISO(t, "OVF ENV", map[string]string{"ovf-env.xml": ovfEnvironment("esxi-guest-1", pki.userData(t, fmt.Sprintf("[settings]\nmotd = %q\n", want)))})
	disk := copyVariantDisk(t, dir, 2<<30)
	m := bootProd(t, "vmware", qemu.Config{
		Disk: disk, DiskBus: qemu.BusPVSCSI, Kernel: ukiOf(t, disk),
		Drives: []qemu.Drive{{Path: env, Bus: qemu.BusPVSCSI, CDROM: true}},
		NIC:    qemu.NICVmxnet3,
	}, pki)

	m.checkOS(t, "vmware")
	m.rootOn(t, "sd[a-z]")
	mods := onDemandModules(t, m)
	for _, want := range []string{"vmw_pvscsi", "vmxnet3", "sr_mod"} {
		if !slices.Contains(mods, want) {
			t.Errorf("modules loaded on demand %v: no %s", mods, want)
		}
	}
	m.userDataFrom(t, contract.UserDataOVF)
	if got := motd(t, m.c); got != want {
		t.Errorf("motd %q, want %q from the OVF environment", got, want)
	}
	m.network(t, "DHCPv4 address on the vmxnet3 NIC", func(st apitypes.Network) bool {
		return hasAddr(ifaceOf(st, "eth0"), "10.0.2.15/24", contract.SourceDHCP4)
	})
}

// ovfEnvelope is the part of an OVF descriptor (DSP0243) the OVA test reads.
type ovfEnvelope struct {
	References struct {
		Files []struct {
			ID   string `xml:"id,attr"`
			Href string `xml:"href,attr"`
			Size int64  `xml:"size,attr"`
		} `xml:"File"`
	} `xml:"References"`
	DiskSection struct {
		Disks []struct {
			DiskID   string `xml:"diskId,attr"`
			FileRef  string `xml:"fileRef,attr"`
			Capacity int64  `xml:"capacity,attr"`
			Format   string `xml:"format,attr"`
		} `xml:"Disk"`
	} `xml:"DiskSection"`
}

// TestVMwareOVA unpacks disk.ova and checks it as vSphere's importer would: the descriptor
// first, then the manifest, then the disk; every file's SHA256 as the manifest says; the
// descriptor naming the disk with its capacity; and the disk a stream-optimized VMDK holding
// disk.raw.
func TestVMwareOVA(t *testing.T) {
	dir := variantBuildDir(t, "vmware")
	ova := filepath.Join(dir, "disk.ova")
	// The builder's own check, then this test's, which share no code with it.
	if err := format.CheckOVA(ova); err != nil {
		t.Errorf("format.CheckOVA: %v", err)
	}
	f, err := os.Open(ova)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := t.TempDir()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", ova, err)
		}
		if h.Typeflag != tar.TypeReg || path.Base(h.Name) != h.Name {
			t.Fatalf("%s: %s: want only plain files at the top", ova, h.Name)
		}
		w, err := os.Create(filepath.Join(out, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		w.Close()
		names = append(names, h.Name)
	}
	if len(names) != 3 || !strings.HasSuffix(names[0], ".ovf") || !strings.HasSuffix(names[1], ".mf") || !strings.HasSuffix(names[2], "-disk1.vmdk") {
		t.Fatalf("%s holds %v; want <name>.ovf, <name>.mf, <name>-disk1.vmdk in that order", ova, names)
	}
	name := strings.TrimSuffix(names[0], ".ovf")
	if names[1] != name+".mf" || names[2] != name+"-disk1.vmdk" {
		t.Errorf("%s holds %v; want the three named after %s", ova, names, name)
	}

	// The manifest: SHA256(<file>)= <hex>, one line for each other file.
	mf, err := os.Open(filepath.Join(out, names[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	lineRE := regexp.MustCompile(`^SHA256\(([^)]+)\)= ([0-9a-f]{64})$`)
	listed := map[string]bool{}
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Errorf("%s: line %q is not SHA256(file)= hex", names[1], sc.Text())
			continue
		}
		listed[m[1]] = true
		if got := sha256File(t, filepath.Join(out, m[1])); got != m[2] {
			t.Errorf("%s: %s has SHA256 %s, the manifest says %s", names[1], m[1], got, m[2])
		}
	}
	for _, n := range []string{names[0], names[2]} {
		if !listed[n] {
			t.Errorf("%s does not list %s", names[1], n)
		}
	}

	// The descriptor names the disk file, its size and the raw disk's capacity.
	b, err := os.ReadFile(filepath.Join(out, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	var env ovfEnvelope
	if err := xml.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s: %v", names[0], err)
	}
	raw, err := os.Stat(filepath.Join(dir, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	vmdk, err := os.Stat(filepath.Join(out, names[2]))
	if err != nil {
		t.Fatal(err)
	}
	refs := env.References.Files
	disks := env.DiskSection.Disks
	if len(refs) != 1 || refs[0].Href != names[2] || refs[0].Size != vmdk.Size() {
		t.Errorf("%s: references %+v; want %s of %d bytes", names[0], refs, names[2], vmdk.Size())
	}
	if len(disks) != 1 || len(refs) == 1 && disks[0].FileRef != refs[0].ID || disks[0].Capacity != raw.Size() ||
		!strings.Contains(disks[0].Format, "streamOptimized") {
		t.Errorf("%s: disks %+v; want one stream-optimized disk of %d bytes", names[0], disks, raw.Size())
	}

	// The disk itself, as QEMU reads VMDK.
	qimg := testutil.Tool(t, "qemu-img", "qemu-utils")
	info, err := exec.Command(qimg, "info", "--output=json", filepath.Join(out, names[2])).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", names[2], err)
	}
	var qi struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		Specific    struct {
			Data struct {
				CreateType string `json:"create-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal(info, &qi); err != nil {
		t.Fatalf("qemu-img info: %v\n%s", err, info)
	}
	if qi.Format != "vmdk" || qi.Specific.Data.CreateType != "streamOptimized" || qi.VirtualSize != raw.Size() {
		t.Errorf("qemu-img info %s: %s", names[2], info)
	}
	qemuImgCompare(t, filepath.Join(out, names[2]), filepath.Join(dir, "disk.raw"))
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
