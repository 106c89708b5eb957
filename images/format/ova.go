package format

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/ballast-os/ballast/contract"
)

// The virtual machine the OVA describes. vSphere takes these as the defaults of a deployment,
// which the user may change; the disk is the only thing that is not a default.
const (
	ovaCPUs      = 2
	ovaMemoryMiB = 2048
	// ovaHardware is virtual hardware version 17 (ESXi 7.0 and later), the first whose hosts know
	// ovaOSType.
	ovaHardware = "vmx-17"
	// ovaOSType is VMware's guest OS identifier for a Linux 5.x or later kernel; ovaOSID the CIM
	// OperatingSystem type VMware pairs with its 64-bit Linux guests.
	ovaOSType = "other5xLinux64Guest"
	ovaOSID   = 101
	// ovaNetwork is the network the adapter is connected to: the one every ESXi host starts
	// with; vSphere asks to map it at deployment.
	ovaNetwork = "VM Network"
	// OVAUserDataKey is the vApp property vSphere shows for user data and hands to the guest in
	// its OVF environment (the apiserver's OVF source reads it).
	OVAUserDataKey = "user-data"
	// ovfStreamOptimized is the disk format URI VMware's importers expect for a streamOptimized
	// VMDK.
	ovfStreamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
	// ustarMaxSize is the largest entry ustar's 11 octal digits can record: OVF asks for plain
	// ustar, without the GNU or pax extensions that go beyond.
	ustarMaxSize = 1<<33 - 1
)

// ovaNameRE is what the files inside the OVA may be named after: names that need no escaping in
// the descriptor, the manifest, the tar header or the VMDK descriptor.
var ovaNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// OVAFileNames are the entries of an OVA whose files are named after name, in their order:
// descriptor, manifest, disk.
func OVAFileNames(name string) (ovf, mf, vmdk string) {
	return name + ".ovf", name + ".mf", name + "-disk1.vmdk"
}

// writeOVA writes the disk as a streamOptimized VMDK to a scratch file beside the output (its
// size and digest go into the descriptor and the manifest, which come first in the archive), then
// the ustar archive: descriptor, manifest, disk, as OVF asks.
func writeOVA(ctx context.Context, in *input, out outFile, name string, opts Options) (err error) {
	// The descriptor's guest type and virtual hardware are vSphere's x86-64 ones; an arm64 disk
	// under them would be an appliance no host can start.
	if arch := opts.Arch.Or(); arch != contract.AMD64 {
		return fmt.Errorf("ova: architecture %q: the OVA describes an x86-64 (amd64) vSphere guest only", arch)
	}
	base := opts.Name
	if base == "" {
		base = strings.TrimSuffix(name, filepath.Ext(name))
	}
	if !ovaNameRE.MatchString(base) {
		return fmt.Errorf("ova: name %q: want letters, digits, '.', '_' and '-' (at most 64)", base)
	}
	ovfName, mfName, vmdkName := OVAFileNames(base)

	scratch, err := os.CreateTemp(filepath.Dir(out.Name()), "."+vmdkName+".*.tmp")
	if err != nil {
		return fmt.Errorf("ova: scratch file: %w", err)
	}
	defer func() {
		scratch.Close()
		if rerr := os.Remove(scratch.Name()); rerr != nil && err == nil {
			err = fmt.Errorf("ova: %w", rerr)
		}
	}()
	digest := sha256.New()
	grains, err := streamVMDK(ctx, in, io.MultiWriter(scratch, digest), vmdkName, opts)
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	vmdkSize, err := scratch.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	if vmdkSize > ustarMaxSize {
		return fmt.Errorf("ova: the VMDK is %d bytes, more than a ustar entry holds (%d)", vmdkSize, int64(ustarMaxSize))
	}

	desc, err := ovfDescriptor(ovfParams{
		Name: base, Version: opts.Version, Description: opts.Description,
		VMDK: vmdkName, VMDKSize: vmdkSize, Capacity: in.size,
		Populated: min(grains*vmdkGrainSize, in.size),
	})
	if err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	ovfSum := sha256.Sum256(desc)
	mf := fmt.Sprintf("SHA256(%s)= %s\nSHA256(%s)= %s\n", ovfName, hex.EncodeToString(ovfSum[:]), vmdkName, hex.EncodeToString(digest.Sum(nil)))

	if _, err := scratch.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)
	mtime := archiveTime(opts)
	entries := []struct {
		name string
		size int64
		r    io.Reader
	}{
		{ovfName, int64(len(desc)), bytes.NewReader(desc)},
		{mfName, int64(len(mf)), strings.NewReader(mf)},
		{vmdkName, vmdkSize, scratch},
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.name, Size: e.size, Mode: 0o644, ModTime: mtime, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("ova: tar header of %s: %w", e.name, err)
		}
		if n, err := io.Copy(tw, e.r); err != nil || n != e.size {
			return fmt.Errorf("ova: %s: wrote %d of %d bytes: %v", e.name, n, e.size, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ova: tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ova: %w", err)
	}
	return nil
}

// ovfParams are what varies between descriptors.
type ovfParams struct {
	Name, Version, Description string
	VMDK                       string // file name
	VMDKSize                   int64  // bytes of the file
	Capacity                   int64  // bytes of the disk
	Populated                  int64  // bytes of the disk that hold data
	CPUs, MemoryMiB, OSID      int
	Hardware, OSType, Network  string
	DiskFormat, UserDataKey    string
}

// ovfDescriptor is the OVF 1.x envelope. The rasd and vssd elements of each item are in the
// order of their CIM schemas (alphabetical), which validating importers enforce.
func ovfDescriptor(p ovfParams) ([]byte, error) {
	p.CPUs, p.MemoryMiB, p.OSID = ovaCPUs, ovaMemoryMiB, ovaOSID
	p.Hardware, p.OSType, p.Network = ovaHardware, ovaOSType, ovaNetwork
	p.DiskFormat, p.UserDataKey = ovfStreamOptimized, OVAUserDataKey
	var b bytes.Buffer
	if err := ovfTemplate.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("ovf descriptor: %w", err)
	}
	return b.Bytes(), nil
}

// xmlText escapes s for XML character data and attribute values alike.
func xmlText(s string) (string, error) {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return "", err
	}
	return b.String(), nil
}

var ovfTemplate = template.Must(template.New("ovf").Funcs(template.FuncMap{"x": xmlText}).Parse(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{{x .VMDK}}" ovf:id="file1" ovf:size="{{.VMDKSize}}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{{.Capacity}}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="{{.DiskFormat}}" ovf:populatedSize="{{.Populated}}"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="{{x .Network}}">
      <Description>The {{x .Network}} network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{{x .Name}}">
    <Info>A virtual machine</Info>
    <Name>{{x .Name}}</Name>
{{- if .Description}}
    <AnnotationSection>
      <Info>A human-readable annotation</Info>
      <Annotation>{{x .Description}}</Annotation>
    </AnnotationSection>
{{- end}}
    <OperatingSystemSection ovf:id="{{.OSID}}" vmw:osType="{{.OSType}}">
      <Info>The kind of installed guest operating system</Info>
      <Description>Other 5.x or later Linux (64-bit)</Description>
    </OperatingSystemSection>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>{{x .Name}}</Product>
{{- if .Version}}
      <Version>{{x .Version}}</Version>
      <FullVersion>{{x .Version}}</FullVersion>
{{- end}}
      <Property ovf:key="{{.UserDataKey}}" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>User data</Label>
        <Description>Settings for the first boot (TOML or JSON user data), base64-encoded</Description>
      </Property>
    </ProductSection>
    <VirtualHardwareSection ovf:transport="iso">
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{{x .Name}}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>{{.Hardware}}</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>{{.CPUs}} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.CPUs}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>{{.MemoryMiB}}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{{.MemoryMiB}}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI Controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SATA Controller</rasd:Description>
        <rasd:ElementName>SATA Controller 0</rasd:ElementName>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:ResourceSubType>vmware.sata.ahci</rasd:ResourceSubType>
        <rasd:ResourceType>20</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard Disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:Description>The drive vSphere attaches the OVF environment to</rasd:Description>
        <rasd:ElementName>CD/DVD Drive 1</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID>
        <rasd:Parent>4</rasd:Parent>
        <rasd:ResourceSubType>vmware.cdrom.remotepassthrough</rasd:ResourceSubType>
        <rasd:ResourceType>15</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>{{x .Network}}</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "{{x .Network}}"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`))
