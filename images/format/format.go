// Package format converts a raw disk image into the formats clouds and
// hypervisors import: QCOW2, streamOptimized VMDK, fixed VHD, the GCE
// tarball and VMware's OVA, and writes the description AWS needs to make an
// AMI of the VMDK. Every converter streams the input, skips its all-zero blocks and
// writes the same bytes for the same input and Options, so two builds of the
// same disk give identical artifacts.
//
// The converters are written here rather than calling qemu-img convert because qemu-img's output
// is not reproducible (VMDK and VHD carry the conversion's time and random UUIDs, and its layout
// choices change between QEMU versions), and an image build must not depend on the host's QEMU.
// qemu-img stays the cross-check: the tests compare every output with the raw disk through it.
package format

import (
	"fmt"
	"strings"
)

// Format names an output format.
type Format string

const (
	// Raw is the input itself: a sparse copy of the disk.
	Raw Format = "raw"
	// QCOW2 is a version 3 QCOW2 image with 64 KiB clusters.
	QCOW2 Format = "qcow2"
	// VMDK is a streamOptimized VMDK, the variant VMware OVF/OVA and AWS VM
	// Import take.
	VMDK Format = "vmdk"
	// VHD is a fixed VHD, the variant Azure takes.
	VHD Format = "vhd"
	// GCE is disk.raw in a gzip-compressed tar, the file GCE image import takes.
	GCE Format = "gce"
	// OVA is a VMware OVF package: the descriptor, its manifest and the
	// streamOptimized VMDK in one ustar archive.
	OVA Format = "ova"
	// AMI is ami.json, what EC2's import-snapshot and register-image take to
	// make an AMI of disk.vmdk, which must be written too (Requires).
	AMI Format = "ami"
)

// Formats lists every known format in a fixed order.
func Formats() []Format {
	return []Format{Raw, QCOW2, VMDK, VHD, GCE, OVA, AMI}
}

// Parse returns the format with the given name.
func Parse(name string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == name {
			return f, nil
		}
	}
	names := make([]string, 0, len(Formats()))
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown disk format %q (known: %s)", name, strings.Join(names, ", "))
}

// Ext returns the file name extension of the format, with its dot, or ""
// for an unknown format.
func Ext(f Format) string {
	switch f {
	case Raw:
		return ".raw"
	case QCOW2:
		return ".qcow2"
	case VMDK:
		return ".vmdk"
	case VHD:
		return ".vhd"
	case GCE:
		return ".tar.gz"
	case OVA:
		return ".ova"
	case AMI:
		return ".json"
	}
	return ""
}

// FileName is the name a build gives the output of format f: disk and the
// format's extension, but ami.json for the AMI description, which is no disk.
func FileName(f Format) string {
	if f == AMI {
		return "ami.json"
	}
	return "disk" + Ext(f)
}

// Requires lists the formats whose outputs must be written beside f's: the
// AMI description names the VMDK.
func Requires(f Format) []Format {
	if f == AMI {
		return []Format{VMDK}
	}
	return nil
}
