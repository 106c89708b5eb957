package format

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// AMIDescription is ami.json: the requests EC2 takes to make an AMI of disk.vmdk, as the AWS CLI's
// --cli-input-json reads them. Whoever uploads the VMDK fills in the two things a build cannot
// know: the bucket (ImportSnapshot.DiskContainer.UserBucket.S3Bucket) and, once the import is
// done, the snapshot (RegisterImage.BlockDeviceMappings[0].Ebs.SnapshotId).
type AMIDescription struct {
	ImportSnapshot AMIImportSnapshot `json:"import_snapshot"`
	RegisterImage  AMIRegisterImage  `json:"register_image"`
}

// AMIImportSnapshot is ImportSnapshot's request.
type AMIImportSnapshot struct {
	Description   string           `json:"Description,omitempty"`
	DiskContainer AMIDiskContainer `json:"DiskContainer"`
}

// AMIDiskContainer is the API's SnapshotDiskContainer.
type AMIDiskContainer struct {
	Description string        `json:"Description,omitempty"`
	Format      string        `json:"Format"` // VHD, VMDK or RAW
	UserBucket  AMIUserBucket `json:"UserBucket"`
}

// AMIUserBucket is where the disk image was uploaded.
type AMIUserBucket struct {
	S3Bucket string `json:"S3Bucket,omitempty"`
	S3Key    string `json:"S3Key"`
}

// AMIRegisterImage is RegisterImage's request for an EBS-backed AMI.
type AMIRegisterImage struct {
	Name                string                  `json:"Name"`
	Description         string                  `json:"Description,omitempty"`
	Architecture        string                  `json:"Architecture"`
	BootMode            string                  `json:"BootMode"`
	EnaSupport          bool                    `json:"EnaSupport"`
	SriovNetSupport     string                  `json:"SriovNetSupport"`
	VirtualizationType  string                  `json:"VirtualizationType"`
	RootDeviceName      string                  `json:"RootDeviceName"`
	BlockDeviceMappings []AMIBlockDeviceMapping `json:"BlockDeviceMappings"`
	ImdsSupport         string                  `json:"ImdsSupport"`
	TpmSupport          string                  `json:"TpmSupport"`
}

// AMIBlockDeviceMapping maps a device name to an EBS volume.
type AMIBlockDeviceMapping struct {
	DeviceName string `json:"DeviceName"`
	Ebs        AMIEbs `json:"Ebs"`
}

// AMIEbs is the API's EbsBlockDevice.
type AMIEbs struct {
	SnapshotId          string `json:"SnapshotId,omitempty"` // the API's spelling, as the others'
	VolumeSize          int64  `json:"VolumeSize"`           // GiB
	VolumeType          string `json:"VolumeType"`
	DeleteOnTermination bool   `json:"DeleteOnTermination"`
}

// amiRootDevice is the root volume's device name; an EBS-backed AMI names it in both places.
const amiRootDevice = "/dev/xvda"

// amiNameOK reports whether r may be in an AMI name: letters, digits and ( ) [ ] . / - ' @ _ and
// space, as RegisterImage allows.
func amiNameOK(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("()[]./-'@_ ", r)
}

// NewAMIDescription describes a disk of diskSize bytes uploaded as vmdk. The AMI's name is
// opts.Name and opts.Version (an account cannot register two AMIs of the same name), with any
// character RegisterImage refuses, such as semver's '+', as '-'.
func NewAMIDescription(diskSize int64, vmdk string, opts Options) (AMIDescription, error) {
	arch, err := contract.ParseArch(string(opts.Arch.Or()))
	if err != nil {
		return AMIDescription{}, fmt.Errorf("ami: %w", err)
	}
	name := opts.Name
	if opts.Version != "" {
		name += "-" + opts.Version
	}
	name = strings.Map(func(r rune) rune {
		if amiNameOK(r) {
			return r
		}
		return '-'
	}, name)
	switch {
	case len(name) < 3 || len(name) > 128:
		return AMIDescription{}, fmt.Errorf("ami: name %q: AMI names have 3 to 128 characters", name)
	case len(opts.Description) > 255:
		return AMIDescription{}, fmt.Errorf("ami: description of %d bytes: AMI descriptions have at most 255", len(opts.Description))
	case diskSize <= 0:
		return AMIDescription{}, fmt.Errorf("ami: disk size %d", diskSize)
	}
	const gib = 1 << 30
	return AMIDescription{
		ImportSnapshot: AMIImportSnapshot{
			Description: name,
			DiskContainer: AMIDiskContainer{
				Description: name,
				Format:      "VMDK",
				UserBucket:  AMIUserBucket{S3Key: vmdk},
			},
		},
		RegisterImage: AMIRegisterImage{
			Name:         name,
			Description:  opts.Description,
			Architecture: arch.Info().EC2,
			// Ballast boots with systemd-boot and a UKI only, and seals to the TPM: UEFI and
			// NitroTPM.
			BootMode:           "uefi",
			EnaSupport:         true,
			SriovNetSupport:    "simple",
			VirtualizationType: "hvm",
			RootDeviceName:     amiRootDevice,
			BlockDeviceMappings: []AMIBlockDeviceMapping{{
				DeviceName: amiRootDevice,
				// The volume cannot be smaller than the snapshot, which is the disk rounded
				// up to whole GiB.
				Ebs: AMIEbs{VolumeSize: (diskSize + gib - 1) / gib, VolumeType: "gp3", DeleteOnTermination: true},
			}},
			// The apiserver and the network service speak IMDSv2 only.
			ImdsSupport: "v2.0",
			TpmSupport:  "v2.0",
		},
	}, nil
}

// writeAMI writes ami.json for the disk, naming the VMDK a build writes beside it.
func writeAMI(ctx context.Context, in *input, out outFile, _ string, opts Options) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := NewAMIDescription(in.size, FileName(VMDK), opts)
	if err != nil {
		return err
	}
	// Descriptions are for people and the CLI, not HTML: '<' and '&' stay as they are.
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return fmt.Errorf("ami: %w", err)
	}
	return nil
}
