package installer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Disk is a whole block device as sysfs describes it, with what the installer made of it.
type Disk struct {
	Name       string // kernel name: nvme0n1, sda, vda, sr0
	Dev        string // device node
	Size       int64  // bytes
	SectorSize int    // logical sector size in bytes
	ReadOnly   bool
	Model      string
	Serial     string
	// ByID are the names udev would link in /dev/disk/by-id (see byIDNames for which kinds).
	ByID []string
}

// Describe is the disk as error messages and milestones show it: "/dev/sda (ATA Foo, 32 GiB)".
func (d Disk) Describe() string {
	var parts []string
	if d.Model != "" {
		parts = append(parts, d.Model)
	}
	parts = append(parts, humanSize(d.Size))
	return fmt.Sprintf("%s (%s)", d.Dev, strings.Join(parts, ", "))
}

func humanSize(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// listDisks lists the whole block devices under sys/class/block in name order. Partitions are
// left out, and so are unused loop and RAM disks, which are many and never of interest.
func listDisks(sysDir, devDir string) ([]Disk, error) {
	classDir := filepath.Join(sysDir, "class", "block")
	ents, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("list block devices in %s: %w", classDir, err)
	}
	var disks []Disk
	for _, e := range ents {
		sys := filepath.Join(classDir, e.Name())
		if exists(filepath.Join(sys, "partition")) {
			continue
		}
		sectors, err := readInt(filepath.Join(sys, "size"))
		if err != nil {
			continue // a device that vanished while being listed
		}
		if sectors == 0 && hasPrefix(e.Name(), "loop", "ram", "zram") {
			continue
		}
		d := Disk{
			Name:       e.Name(),
			Dev:        filepath.Join(devDir, devName(sys, e.Name())),
			Size:       sectors * 512, // sysfs counts 512-byte units whatever the sector size
			SectorSize: 512,
		}
		if v, err := readInt(filepath.Join(sys, "queue", "logical_block_size")); err == nil && v > 0 {
			d.SectorSize = int(v)
		}
		if v, err := readInt(filepath.Join(sys, "ro")); err == nil && v != 0 {
			d.ReadOnly = true
		}
		d.Model, d.Serial, d.ByID = identify(sys, e.Name())
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks, nil
}

// virtualKind says why a device is never a target by its kind alone, or "".
func virtualKind(name string) string {
	switch {
	case hasPrefix(name, "loop"):
		return "a loop device"
	case hasPrefix(name, "ram", "zram"):
		return "a RAM disk"
	case hasPrefix(name, "dm-"):
		return "a device-mapper device"
	case hasPrefix(name, "md"):
		return "a software RAID device"
	case hasPrefix(name, "sr"):
		return "an optical drive"
	}
	return ""
}

func hasPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// identify reads the model and serial number and computes the /dev/disk/by-id names udev's
// 60-persistent-storage rules would give the disk. Supported, best effort where noted:
//   - nvme-<model>_<serial> and nvme-<wwid> (eui.…, uuid.…, nvme.…) for NVMe namespaces;
//   - virtio-<serial> for virtio-blk disks with a serial;
//   - ata-<model>_<serial> for ATA disks behind libata, from the ATA IDENTIFY data the kernel
//     exposes as VPD page 0x89 (else the SCSI model and VPD page 0x80 serial, which may be
//     truncated), and wwn-0x<naa> when the disk has a world wide name;
//   - usb-<vendor>_<model>_<serial>-<target>:<lun> for USB mass storage;
//   - scsi-3<naa> and wwn-0x<naa> for other SCSI disks with an NAA identifier (not the
//     vendor-specific scsi-0…/scsi-S… forms scsi_id derives from other VPD designators).
func identify(sys, name string) (model, serial string, ids []string) {
	dev := filepath.Join(sys, "device")
	switch {
	case strings.HasPrefix(name, "nvme"):
		model, serial = readString(filepath.Join(dev, "model")), readString(filepath.Join(dev, "serial"))
		if model != "" && serial != "" {
			ids = append(ids, "nvme-"+escapeChars(model+"_"+serial))
		}
		if w := readString(filepath.Join(sys, "wwid")); w != "" {
			ids = append(ids, "nvme-"+escapeChars(w))
		}
	case strings.HasPrefix(name, "vd"):
		serial = readString(filepath.Join(sys, "serial"))
		if serial != "" {
			ids = append(ids, "virtio-"+escapeChars(serial))
		}
	case strings.HasPrefix(name, "sd"):
		vendor := readString(filepath.Join(dev, "vendor"))
		model = readString(filepath.Join(dev, "model"))
		serial = vpdSerial(filepath.Join(dev, "vpd_pg80"))
		naa := ""
		if w, ok := strings.CutPrefix(readString(filepath.Join(dev, "wwid")), "naa."); ok {
			naa = strings.ToLower(w)
		}
		switch usbSerial, target := usbDevice(dev); {
		case usbSerial != "":
			serial = usbSerial
			ids = append(ids, "usb-"+collapse(vendor)+"_"+collapse(model)+"_"+collapse(serial)+"-"+target)
		case vendor == "ATA":
			if m, s, ok := ataIdentify(filepath.Join(dev, "vpd_pg89")); ok {
				model, serial = m, s
			}
			if model != "" && serial != "" {
				ids = append(ids, "ata-"+collapse(model)+"_"+collapse(serial))
			}
			if naa != "" {
				ids = append(ids, "wwn-0x"+naa)
			}
		case naa != "":
			ids = append(ids, "scsi-3"+naa, "wwn-0x"+naa)
		}
		if vendor != "" && vendor != "ATA" {
			model = strings.TrimSpace(vendor + " " + model)
		}
	}
	return model, serial, ids
}

// usbDevice finds the USB device a SCSI disk hangs off: its iSerial and the disk's
// "<target>:<lun>" from the SCSI address (host:channel:target:lun), as udev's usb_id names them.
func usbDevice(dev string) (serial, instance string) {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return "", ""
	}
	if f := strings.Split(filepath.Base(real), ":"); len(f) == 4 {
		instance = f[2] + ":" + f[3]
	}
	for d := filepath.Dir(real); d != "/" && d != "."; d = filepath.Dir(d) {
		if exists(filepath.Join(d, "idVendor")) {
			return readString(filepath.Join(d, "serial")), instance
		}
	}
	return "", ""
}

// ataIdentify extracts the model and serial from VPD page 0x89 (ATA Information), which carries
// the 512 bytes of ATA IDENTIFY DEVICE from byte 60; ATA strings are byte-swapped words.
func ataIdentify(path string) (model, serial string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 60+512 || b[1] != 0x89 {
		return "", "", false
	}
	id := b[60 : 60+512]
	str := func(from, to int) string {
		s := make([]byte, 0, to-from)
		for i := from; i+1 < to; i += 2 {
			s = append(s, id[i+1], id[i])
		}
		return strings.TrimSpace(strings.TrimRight(string(s), "\x00"))
	}
	serial, model = str(20, 40), str(54, 94)
	return model, serial, model != "" && serial != ""
}

// vpdSerial reads the unit serial number from VPD page 0x80: a 4-byte header whose last byte is
// the length, then the serial, padded with spaces.
func vpdSerial(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := min(int(b[3]), len(b)-4)
	return strings.TrimSpace(strings.TrimRight(string(b[4:4+n]), "\x00"))
}

// collapse is udev's whitespace rule for the ata_id, scsi_id and usb_id strings: trimmed, each
// run of white space one '_', then escapeChars.
func collapse(s string) string { return escapeChars(strings.Join(strings.Fields(s), "_")) }

// escapeChars replaces every byte udev does not allow in a link name by '_' (string_escape=replace).
func escapeChars(s string) string {
	b := []byte(strings.TrimSpace(s))
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', strings.IndexByte("#+-.:=@_", c) >= 0:
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// devName is the node's name under /dev: the uevent's DEVNAME, else the sysfs name with '!'
// standing for '/' (cciss!c0d0).
func devName(sys, name string) string {
	if b, err := os.ReadFile(filepath.Join(sys, "uevent")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				return v
			}
		}
	}
	return strings.ReplaceAll(name, "!", "/")
}

func readString(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
