package installer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// imageSectorSize is the sector size Ballast's disk images are laid out for: their GPT is at
// byte 512 and the seed's LBAs count 512-byte sectors.
const imageSectorSize = 512

// verdict is what the installer made of one disk as a target.
type verdict struct {
	Disk
	reject   string    // why the disk can never be the target; "" when it can
	findings []Finding // what holds data on it; nil when it is empty
	probeErr error
}

func (v verdict) String() string {
	s := v.Describe()
	if len(v.ByID) > 0 {
		s += " by-id " + strings.Join(v.ByID, ",")
	}
	switch {
	case v.reject != "":
		s += ": " + v.reject
	case v.probeErr != nil:
		s += ": unreadable: " + v.probeErr.Error()
	case len(v.findings) > 0:
		s += ": holds data: " + findingsText(v.findings)
	default:
		s += ": empty"
	}
	return s
}

func findingsText(fs []Finding) string {
	ss := make([]string, len(fs))
	for i, f := range fs {
		ss[i] = f.String()
	}
	return strings.Join(ss, ", ")
}

// DataError is the refusal to overwrite a disk that holds data.
type DataError struct {
	Disk     Disk
	Findings []Finding
}

func (e *DataError) Error() string {
	return fmt.Sprintf("target %s holds data: %s; add %s to the command line to overwrite it",
		e.Disk.Describe(), findingsText(e.Findings), contract.ParamInstallWipe)
}

// judge looks at every disk as a target for an image of need bytes; medium is the installer
// medium's node ("" for a network install), never a target.
func judge(disks []Disk, need int64, medium string) []verdict {
	vs := make([]verdict, len(disks))
	for i, d := range disks {
		v := verdict{Disk: d}
		switch {
		case virtualKind(d.Name) != "":
			v.reject = virtualKind(d.Name)
		case d.Size == 0:
			v.reject = "no medium (size 0)"
		case medium != "" && d.Dev == medium:
			v.reject = "the installer medium"
		case d.ReadOnly:
			v.reject = "read-only"
		case d.SectorSize != imageSectorSize:
			v.reject = fmt.Sprintf("logical sector size %d, the image is laid out for %d", d.SectorSize, imageSectorSize)
		case d.Size < need:
			v.reject = fmt.Sprintf("too small: the image needs %s", humanSize(need))
		}
		if v.reject == "" {
			v.findings, v.probeErr = probeDisk(d)
		}
		vs[i] = v
	}
	return vs
}

func probeDisk(d Disk) ([]Finding, error) {
	f, err := os.Open(d.Dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head, tail, off, err := readEnds(f, d.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Dev, err)
	}
	found, _ := Probe(head, tail, off)
	return found, nil
}

// pickTarget chooses the target from the verdicts: the disk spec names (a /dev path, a by-id
// name with or without /dev/disk/by-id/, a kernel name), or for InstallDiskAuto and "" the only
// empty disk, or when there is none the only disk that could take the image. A disk that holds
// data is a *DataError unless wipe is set.
func pickTarget(vs []verdict, spec, devDir string, wipe bool) (verdict, error) {
	if spec == "" || spec == contract.InstallDiskAuto {
		var empty []verdict
		for _, v := range vs {
			if v.reject == "" && v.probeErr == nil && len(v.findings) == 0 {
				empty = append(empty, v)
			}
		}
		if len(empty) == 1 {
			return empty[0], nil
		}
		// No empty disk, and one disk that could take the image but holds data: a machine
		// with one disk being reinstalled. It is the target only when wiping is asked for; the
		// refusal names what is on it.
		var held []verdict
		for _, v := range vs {
			if v.reject == "" && v.probeErr == nil && len(v.findings) > 0 {
				held = append(held, v)
			}
		}
		if len(empty) == 0 && len(held) == 1 {
			if !wipe {
				return verdict{}, &DataError{Disk: held[0].Disk, Findings: held[0].findings}
			}
			return held[0], nil
		}
		what := "no empty disk"
		if len(empty) > 1 {
			what = fmt.Sprintf("%d empty disks", len(empty))
		}
		return verdict{}, fmt.Errorf("%s to install on (%s=%s picks the only empty one; name one with %s=<path or by-id name>); disks:%s",
			what, contract.ParamInstallDisk, contract.InstallDiskAuto, contract.ParamInstallDisk, listing(vs))
	}
	v, ok := find(vs, spec, devDir)
	if !ok {
		return verdict{}, fmt.Errorf("%s=%s: no such disk; disks:%s", contract.ParamInstallDisk, spec, listing(vs))
	}
	switch {
	case v.reject != "":
		return verdict{}, fmt.Errorf("%s=%s: %s is not a target: %s", contract.ParamInstallDisk, spec, v.Describe(), v.reject)
	case v.probeErr != nil:
		return verdict{}, fmt.Errorf("%s=%s: %w", contract.ParamInstallDisk, spec, v.probeErr)
	case len(v.findings) > 0 && !wipe:
		return verdict{}, &DataError{Disk: v.Disk, Findings: v.findings}
	}
	return v, nil
}

func find(vs []verdict, spec, devDir string) (verdict, bool) {
	byID, isByID := strings.CutPrefix(spec, "/dev/disk/by-id/")
	path := ""
	if rest, ok := strings.CutPrefix(spec, "/dev/"); ok && !isByID {
		path = filepath.Join(devDir, rest)
	}
	for _, v := range vs {
		switch {
		case path != "":
			if v.Dev == path {
				return v, true
			}
		case v.Name == byID:
			return v, true
		default:
			for _, id := range v.ByID {
				if id == byID {
					return v, true
				}
			}
		}
	}
	return verdict{}, false
}

func listing(vs []verdict) string {
	if len(vs) == 0 {
		return " none"
	}
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return b.String()
}
