package format

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// CheckOVA checks an OVA the way VMware's importers read one, without ovftool: a ustar archive
// whose first entry is the OVF descriptor and second the manifest; a well-formed descriptor whose
// references, disks and hardware hold together; and a manifest whose digests match. It parses
// everything itself rather than with the writer's structures, so it can catch the writer's
// mistakes, and it reports every problem it finds.
func CheckOVA(path string) error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	pkg, err := readOVA(path)
	if err != nil {
		return fmt.Errorf("ova %s: %w", path, err)
	}
	env, err := parseEnvelope(pkg.ovf)
	if err != nil {
		return fmt.Errorf("ova %s: %s: %w", path, pkg.ovfName, err)
	}
	checkReferences(env, pkg, bad)
	checkHardware(env, bad)
	checkManifest(pkg, env, bad)
	if len(problems) != 0 {
		return fmt.Errorf("ova %s: %w", path, errors.Join(problems...))
	}
	return nil
}

// ovaEntry is a file of the archive other than the descriptor and the manifest.
type ovaEntry struct {
	size   int64
	sha256 string
	head   []byte // the first KiB: a VMDK's header and the start of its descriptor
}

type ovaPackage struct {
	ovfName, mfName string
	ovf, mf         []byte
	files           map[string]ovaEntry
}

// readOVA reads the archive: ustar regular files in one directory, the descriptor first and the
// manifest second.
func readOVA(path string) (*ovaPackage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReader(f))
	pkg := &ovaPackage{files: map[string]ovaEntry{}}
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar entry %d: %w", i+1, err)
		}
		switch {
		case hdr.Format != tar.FormatUSTAR:
			return nil, fmt.Errorf("tar entry %s: %v, not plain ustar", hdr.Name, hdr.Format)
		case hdr.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("tar entry %s: type %q, not a regular file", hdr.Name, hdr.Typeflag)
		case strings.Contains(hdr.Name, "/"):
			return nil, fmt.Errorf("tar entry %s: in a directory", hdr.Name)
		case hdr.Name == pkg.ovfName || hdr.Name == pkg.mfName || hasKey(pkg.files, hdr.Name):
			return nil, fmt.Errorf("tar entry %s: twice", hdr.Name)
		}
		switch {
		case i == 0:
			if !strings.HasSuffix(hdr.Name, ".ovf") {
				return nil, fmt.Errorf("first entry %s: want the .ovf descriptor", hdr.Name)
			}
			pkg.ovfName = hdr.Name
			if pkg.ovf, err = readSmall(tr, hdr); err != nil {
				return nil, err
			}
		case i == 1:
			if hdr.Name != strings.TrimSuffix(pkg.ovfName, ".ovf")+".mf" {
				return nil, fmt.Errorf("second entry %s: want the manifest %s", hdr.Name, strings.TrimSuffix(pkg.ovfName, ".ovf")+".mf")
			}
			pkg.mfName = hdr.Name
			if pkg.mf, err = readSmall(tr, hdr); err != nil {
				return nil, err
			}
		default:
			h := sha256.New()
			var head bytes.Buffer
			n, err := io.Copy(io.MultiWriter(h, &limitedBuffer{&head, 1024}), tr)
			if err != nil {
				return nil, fmt.Errorf("tar entry %s: %w", hdr.Name, err)
			}
			pkg.files[hdr.Name] = ovaEntry{size: n, sha256: hex.EncodeToString(h.Sum(nil)), head: head.Bytes()}
		}
	}
	if pkg.mfName == "" {
		return nil, fmt.Errorf("no descriptor and manifest")
	}
	return pkg, nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func readSmall(tr *tar.Reader, hdr *tar.Header) ([]byte, error) {
	if hdr.Size > 1<<20 {
		return nil, fmt.Errorf("tar entry %s: %d bytes, too large", hdr.Name, hdr.Size)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, fmt.Errorf("tar entry %s: %w", hdr.Name, err)
	}
	return b, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// The descriptor's namespaces.
const (
	nsRASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
	nsVSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
)

type ovfEnvelope struct {
	XMLName    xml.Name           `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	References *ovfRefs           `xml:"http://schemas.dmtf.org/ovf/envelope/1 References"`
	Disks      *ovfDisks          `xml:"http://schemas.dmtf.org/ovf/envelope/1 DiskSection"`
	Networks   *ovfNetworks       `xml:"http://schemas.dmtf.org/ovf/envelope/1 NetworkSection"`
	Systems    []ovfVirtualSystem `xml:"http://schemas.dmtf.org/ovf/envelope/1 VirtualSystem"`
}

type ovfRefs struct {
	Files []ovfFile `xml:"http://schemas.dmtf.org/ovf/envelope/1 File"`
}

type ovfFile struct {
	Href string `xml:"http://schemas.dmtf.org/ovf/envelope/1 href,attr"`
	ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
	Size string `xml:"http://schemas.dmtf.org/ovf/envelope/1 size,attr"`
}

type ovfDisks struct {
	Info  string    `xml:"http://schemas.dmtf.org/ovf/envelope/1 Info"`
	Disks []ovfDisk `xml:"http://schemas.dmtf.org/ovf/envelope/1 Disk"`
}

type ovfDisk struct {
	ID        string `xml:"http://schemas.dmtf.org/ovf/envelope/1 diskId,attr"`
	FileRef   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 fileRef,attr"`
	Capacity  string `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacity,attr"`
	Units     string `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacityAllocationUnits,attr"`
	Format    string `xml:"http://schemas.dmtf.org/ovf/envelope/1 format,attr"`
	Populated string `xml:"http://schemas.dmtf.org/ovf/envelope/1 populatedSize,attr"`
}

type ovfNetworks struct {
	Info     string `xml:"http://schemas.dmtf.org/ovf/envelope/1 Info"`
	Networks []struct {
		Name string `xml:"http://schemas.dmtf.org/ovf/envelope/1 name,attr"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 Network"`
}

type ovfVirtualSystem struct {
	ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
	Info string `xml:"http://schemas.dmtf.org/ovf/envelope/1 Info"`
	OS   *struct {
		ID     string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		OSType string `xml:"http://www.vmware.com/schema/ovf osType,attr"`
		Info   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 Info"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 OperatingSystemSection"`
	Products []struct {
		Info       string `xml:"http://schemas.dmtf.org/ovf/envelope/1 Info"`
		Properties []struct {
			Key          string `xml:"http://schemas.dmtf.org/ovf/envelope/1 key,attr"`
			Type         string `xml:"http://schemas.dmtf.org/ovf/envelope/1 type,attr"`
			Configurable string `xml:"http://schemas.dmtf.org/ovf/envelope/1 userConfigurable,attr"`
		} `xml:"http://schemas.dmtf.org/ovf/envelope/1 Property"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 ProductSection"`
	Hardware []struct {
		Transport string        `xml:"http://schemas.dmtf.org/ovf/envelope/1 transport,attr"`
		Info      string        `xml:"http://schemas.dmtf.org/ovf/envelope/1 Info"`
		System    ovfElements   `xml:"http://schemas.dmtf.org/ovf/envelope/1 System"`
		Items     []ovfElements `xml:"http://schemas.dmtf.org/ovf/envelope/1 Item"`
		Config    []struct {
			Key   string `xml:"http://www.vmware.com/schema/ovf key,attr"`
			Value string `xml:"http://www.vmware.com/schema/ovf value,attr"`
		} `xml:"http://www.vmware.com/schema/ovf Config"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 VirtualHardwareSection"`
}

// ovfElements is an Item or System: CIM elements, kept in their order.
type ovfElements struct {
	Fields []struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	} `xml:",any"`
}

// get returns the text of the element of namespace ns named local, "" if none.
func (e ovfElements) get(ns, local string) string {
	for _, f := range e.Fields {
		if f.XMLName.Space == ns && f.XMLName.Local == local {
			return strings.TrimSpace(f.Value)
		}
	}
	return ""
}

func parseEnvelope(b []byte) (*ovfEnvelope, error) {
	dec := xml.NewDecoder(bytes.NewReader(b))
	var env ovfEnvelope
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("not an OVF envelope: %w", err)
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after the envelope: %w", err)
		}
		if cd, ok := tok.(xml.CharData); !ok && !isMisc(tok) || ok && len(bytes.TrimSpace(cd)) != 0 {
			return nil, fmt.Errorf("content after the envelope")
		}
	}
	switch {
	case env.References == nil:
		return nil, fmt.Errorf("no References")
	case env.Disks == nil || env.Disks.Info == "":
		return nil, fmt.Errorf("no DiskSection with an Info")
	case env.Networks == nil || env.Networks.Info == "":
		return nil, fmt.Errorf("no NetworkSection with an Info")
	case len(env.Systems) != 1:
		return nil, fmt.Errorf("%d VirtualSystems, want 1", len(env.Systems))
	}
	return &env, nil
}

func isMisc(tok xml.Token) bool {
	switch tok.(type) {
	case xml.Comment, xml.ProcInst:
		return true
	}
	return false
}

// bytesOf parses a capacity in capacityAllocationUnits: "byte" (the default) or "byte * 2^n".
func bytesOf(value, units string) (int64, error) {
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("capacity %q is not a number of units", value)
	}
	switch u := strings.ReplaceAll(units, " ", ""); {
	case u == "" || u == "byte":
		return v, nil
	case strings.HasPrefix(u, "byte*2^"):
		n, err := strconv.Atoi(strings.TrimPrefix(u, "byte*2^"))
		if err != nil || n < 0 || n > 40 {
			return 0, fmt.Errorf("capacity units %q", units)
		}
		return v << n, nil
	}
	return 0, fmt.Errorf("capacity units %q", units)
}

var vmdkCreateTypeRE = regexp.MustCompile(`(?m)^createType="([^"]*)"`)

// checkReferences checks that every File is in the archive with its size, every archived file is
// a File, and every Disk has a File whose VMDK header says the Disk's capacity.
func checkReferences(env *ovfEnvelope, pkg *ovaPackage, bad func(string, ...any)) {
	ids := map[string]string{} // File id → href
	for _, f := range env.References.Files {
		if _, dup := ids[f.ID]; dup || f.ID == "" {
			bad("References: File id %q missing or repeated", f.ID)
		}
		ids[f.ID] = f.Href
		e, ok := pkg.files[f.Href]
		if !ok {
			bad("References: File %s is not in the archive", f.Href)
			continue
		}
		if f.Size != "" && f.Size != strconv.FormatInt(e.size, 10) {
			bad("References: File %s: size %s, the archive's %d", f.Href, f.Size, e.size)
		}
	}
	for name := range pkg.files {
		if !slices.ContainsFunc(env.References.Files, func(f ovfFile) bool { return f.Href == name }) {
			bad("archive entry %s is not in References", name)
		}
	}
	if len(env.Disks.Disks) == 0 {
		bad("DiskSection: no Disk")
	}
	for _, d := range env.Disks.Disks {
		href, ok := ids[d.FileRef]
		if !ok {
			bad("Disk %s: fileRef %q names no File", d.ID, d.FileRef)
			continue
		}
		capacity, err := bytesOf(d.Capacity, d.Units)
		if err != nil {
			bad("Disk %s: %v", d.ID, err)
			continue
		}
		if d.Populated != "" {
			if p, err := strconv.ParseInt(d.Populated, 10, 64); err != nil || p < 0 || p > capacity {
				bad("Disk %s: populatedSize %q, capacity %d", d.ID, d.Populated, capacity)
			}
		}
		if !strings.HasPrefix(d.Format, "http://www.vmware.com/interfaces/specifications/vmdk.html#") {
			bad("Disk %s: format %q is not a VMDK", d.ID, d.Format)
			continue
		}
		head := pkg.files[href].head
		if len(head) < 512 || binary.LittleEndian.Uint32(head) != 0x564d444b {
			bad("Disk %s: %s is not a sparse VMDK extent", d.ID, href)
			continue
		}
		if got := int64(binary.LittleEndian.Uint64(head[12:])) * 512; got != capacity {
			bad("Disk %s: capacity %d bytes, %s's header %d", d.ID, capacity, href, got)
		}
		sub := strings.TrimPrefix(d.Format, "http://www.vmware.com/interfaces/specifications/vmdk.html#")
		if m := vmdkCreateTypeRE.FindSubmatch(head[512:]); m == nil || string(m[1]) != sub {
			bad("Disk %s: format %s, but %s's descriptor says createType %q", d.ID, sub, href, m)
		}
	}
}

// CIM resource types (CIM_ResourceAllocationSettingData.ResourceType).
const (
	rtCPU      = "3"
	rtMemory   = "4"
	rtIDE      = "5"
	rtSCSI     = "6"
	rtEthernet = "10"
	rtCDROM    = "15"
	rtDisk     = "17"
	rtSATA     = "20"
)

// checkHardware checks what VMware needs to make the virtual machine: CPUs, memory, every disk on
// a controller, a network adapter on a declared network, UEFI firmware, the ISO transport with a
// drive to attach it to, and the user-data property.
func checkHardware(env *ovfEnvelope, bad func(string, ...any)) {
	vs := env.Systems[0]
	if vs.OS == nil || vs.OS.OSType == "" || vs.OS.Info == "" {
		bad("VirtualSystem %s: no OperatingSystemSection with vmw:osType and an Info", vs.ID)
	}
	if len(vs.Hardware) != 1 {
		bad("VirtualSystem %s: %d VirtualHardwareSections, want 1", vs.ID, len(vs.Hardware))
		return
	}
	hw := vs.Hardware[0]
	if hw.Info == "" {
		bad("VirtualHardwareSection: no Info")
	}
	if t := hw.System.get(nsVSSD, "VirtualSystemType"); !strings.HasPrefix(t, "vmx-") {
		bad("System: VirtualSystemType %q is no VMware hardware version", t)
	}
	checkOrder("System", hw.System, nsVSSD, bad)
	byID := map[string]ovfElements{}
	count := map[string]int{}
	for i, it := range hw.Items {
		id := it.get(nsRASD, "InstanceID")
		if _, dup := byID[id]; dup || id == "" {
			bad("Item %d: InstanceID %q missing or repeated", i+1, id)
		}
		byID[id] = it
		count[it.get(nsRASD, "ResourceType")]++
		checkOrder("Item "+id, it, nsRASD, bad)
	}
	controller := func(what, id, parent string) {
		p, ok := byID[parent]
		if !ok {
			bad("%s %s: Parent %q is no Item", what, id, parent)
			return
		}
		if rt := p.get(nsRASD, "ResourceType"); rt != rtIDE && rt != rtSCSI && rt != rtSATA {
			bad("%s %s: Parent %s has ResourceType %s, not a disk controller", what, id, parent, rt)
		}
	}
	for _, rt := range []string{rtCPU, rtMemory} {
		if count[rt] != 1 {
			bad("VirtualHardwareSection: %d Items of ResourceType %s, want 1", count[rt], rt)
		}
	}
	attached := map[string]bool{}
	networks := map[string]bool{}
	for _, n := range env.Networks.Networks {
		networks[n.Name] = true
	}
	for id, it := range byID {
		switch it.get(nsRASD, "ResourceType") {
		case rtCPU, rtMemory:
			if q, err := strconv.Atoi(it.get(nsRASD, "VirtualQuantity")); err != nil || q < 1 {
				bad("Item %s: VirtualQuantity %q", id, it.get(nsRASD, "VirtualQuantity"))
			}
		case rtSCSI:
			if st := it.get(nsRASD, "ResourceSubType"); !slices.Contains([]string{"VirtualSCSI", "lsilogic", "lsilogicsas", "buslogic"}, st) {
				bad("Item %s: SCSI controller type %q", id, st)
			}
		case rtDisk:
			host := it.get(nsRASD, "HostResource")
			disk, ok := strings.CutPrefix(host, "ovf:/disk/")
			if !ok || !slices.ContainsFunc(env.Disks.Disks, func(d ovfDisk) bool { return d.ID == disk }) {
				bad("disk Item %s: HostResource %q names no Disk", id, host)
			}
			attached[disk] = true
			controller("disk Item", id, it.get(nsRASD, "Parent"))
		case rtCDROM:
			controller("CD-ROM Item", id, it.get(nsRASD, "Parent"))
		case rtEthernet:
			if c := it.get(nsRASD, "Connection"); !networks[c] {
				bad("ethernet Item %s: Connection %q is not in the NetworkSection", id, c)
			}
			if st := it.get(nsRASD, "ResourceSubType"); !slices.Contains([]string{"VmxNet3", "E1000", "E1000e"}, st) {
				bad("ethernet Item %s: adapter type %q", id, st)
			}
		}
	}
	for _, d := range env.Disks.Disks {
		if !attached[d.ID] {
			bad("Disk %s is on no controller", d.ID)
		}
	}
	if count[rtEthernet] == 0 {
		bad("VirtualHardwareSection: no ethernet adapter")
	}
	if !slices.Contains(strings.Fields(hw.Transport), "iso") {
		bad("VirtualHardwareSection: transport %q lacks iso: vSphere would not attach the OVF environment", hw.Transport)
	} else if count[rtCDROM] == 0 {
		bad("VirtualHardwareSection: the iso transport needs a CD-ROM drive")
	}
	firmware := ""
	for _, c := range hw.Config {
		if c.Key == "firmware" {
			firmware = c.Value
		}
	}
	if firmware != "efi" {
		bad("VirtualHardwareSection: firmware %q, want efi", firmware)
	}
	found := false
	for _, p := range vs.Products {
		for _, prop := range p.Properties {
			if prop.Key == "user-data" {
				found = true
				if prop.Type != "string" || prop.Configurable != "true" {
					bad("ProductSection: property user-data has type %q, userConfigurable %q; want a configurable string", prop.Type, prop.Configurable)
				}
			}
		}
		if p.Info == "" {
			bad("ProductSection: no Info")
		}
	}
	if !found {
		bad("no ProductSection property user-data")
	}
}

// checkOrder checks the CIM elements of an Item or System come in their schema's order, which
// is alphabetical, and once each.
func checkOrder(what string, e ovfElements, ns string, bad func(string, ...any)) {
	prev := ""
	for _, f := range e.Fields {
		if f.XMLName.Space != ns {
			continue
		}
		if f.XMLName.Local <= prev {
			bad("%s: %s after %s, against the CIM schema's order", what, f.XMLName.Local, prev)
		}
		prev = f.XMLName.Local
	}
}

var mfLineRE = regexp.MustCompile(`^SHA256\(([^)]+)\)= ([0-9a-f]{64})$`)

// checkManifest checks every manifest line's digest, and that the descriptor and every File are
// listed.
func checkManifest(pkg *ovaPackage, env *ovfEnvelope, bad func(string, ...any)) {
	listed := map[string]bool{}
	ovfSum := sha256.Sum256(pkg.ovf)
	for i, line := range strings.Split(strings.TrimSuffix(string(pkg.mf), "\n"), "\n") {
		m := mfLineRE.FindStringSubmatch(line)
		if m == nil {
			bad("%s line %d: %q is not SHA256(file)= digest", pkg.mfName, i+1, line)
			continue
		}
		name, sum := m[1], m[2]
		listed[name] = true
		want := ""
		if name == pkg.ovfName {
			want = hex.EncodeToString(ovfSum[:])
		} else if e, ok := pkg.files[name]; ok {
			want = e.sha256
		} else {
			bad("%s line %d: %s is not in the archive", pkg.mfName, i+1, name)
			continue
		}
		if sum != want {
			bad("%s line %d: %s has SHA-256 %s, the manifest says %s", pkg.mfName, i+1, name, want, sum)
		}
	}
	if !listed[pkg.ovfName] {
		bad("%s does not list %s", pkg.mfName, pkg.ovfName)
	}
	for _, f := range env.References.Files {
		if !listed[f.Href] {
			bad("%s does not list %s", pkg.mfName, f.Href)
		}
	}
}
