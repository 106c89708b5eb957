package qemu

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Bus is how a disk is attached to the machine: the controller a guest's kernel needs a driver for.
type Bus string

const (
	BusVirtio Bus = "virtio" // virtio-blk-pci (the default)
	BusNVMe   Bus = "nvme"   // a namespace of an NVMe controller (nvme + nvme-ns)
	BusAHCI   Bus = "ahci"   // a port of q35's built-in ICH9 AHCI controller (ide-hd, ide-cd); amd64 only
	BusPVSCSI Bus = "pvscsi" // a target of VMware's paravirtual SCSI controller (scsi-hd, scsi-cd)
	BusUSB    Bus = "usb"    // a USB mass-storage device on an xHCI controller (usb-storage)
)

// NIC models, for Config.NIC and TapNIC.Model.
const (
	NICVirtio  = "virtio-net-pci" // the default
	NICE1000e  = "e1000e"         // Intel 82574L, what bare metal and many hypervisors offer
	NICVmxnet3 = "vmxnet3"        // VMware's paravirtual NIC
)

// ahciPorts is how many ports q35's ICH9 AHCI controller has (buses ide.0 to ide.5).
const ahciPorts = 6

// Drive is a disk or CD-ROM attached after Config.Disk and Config.ExtraDisks.
type Drive struct {
	// Path is the image; files ending in .qcow2 are qcow2, everything else raw.
	Path string
	Bus  Bus // default BusVirtio
	// ReadOnly attaches the image read-only. QEMU's AHCI disk (ide-hd) refuses read-only images:
	// use a CD-ROM or another bus there.
	ReadOnly bool
	// CDROM makes the drive a CD-ROM (always read-only): ide-cd on BusAHCI, scsi-cd on
	// BusPVSCSI; other buses have none.
	CDROM bool
	// Boot makes the firmware try this drive first (bootindex 1, Disk then gets 2), e.g. an
	// installer CD-ROM. At most one drive boots.
	Boot bool
	// NVMe places the drive when Bus is BusNVMe.
	NVMe NVMeSlot
}

// NVMeSlot places a disk on an NVMe controller. Linux names a namespace nvme<controller>n<nsid>
// (controllers numbered in PCI order, which is Controller's order), so a test can put the
// disk it boots anywhere but at nvme0n1.
type NVMeSlot struct {
	// Controller picks the NVMe controller (a PCI device of its own), 0, 1, ...; controllers are
	// added in this order.
	Controller int
	// NSID is the namespace ID on that controller, from 1; 0 takes the lowest one free, the
	// disks taken in order (Disk first).
	NSID int
}

// SMBIOSSystem is the firmware's SMBIOS type 1 (system information) table, what Linux shows in
// /sys/class/dmi/id (sys_vendor, product_name, product_version, product_serial, product_uuid,
// product_sku, product_family). Empty strings are left to QEMU.
type SMBIOSSystem struct {
	Manufacturer, Product, Version, Serial, UUID, SKU, Family string
}

func (s SMBIOSSystem) fields() [][2]string {
	return [][2]string{{"manufacturer", s.Manufacturer}, {"product", s.Product}, {"version", s.Version},
		{"serial", s.Serial}, {"uuid", s.UUID}, {"sku", s.SKU}, {"family", s.Family}}
}

// arg is the -smbios value, "" when no field is set.
func (s SMBIOSSystem) arg() string {
	v := "type=1"
	for _, f := range s.fields() {
		if f[1] != "" {
			v += "," + f[0] + "=" + escape(f[1])
		}
	}
	if v == "type=1" {
		return ""
	}
	return v
}

func (s SMBIOSSystem) validate() error {
	for _, f := range s.fields() {
		if strings.ContainsAny(f[1], "\n\r\x00") {
			return fmt.Errorf("qemu: config: SMBIOS %s %q: no line breaks or NULs", f[0], f[1])
		}
	}
	return nil
}

// validNIC reports whether model is a NIC model Config knows ("" is the default).
func validNIC(model string) bool {
	return model == "" || model == NICVirtio || model == NICE1000e || model == NICVmxnet3
}

func nicModel(model string) string {
	if model == "" {
		return NICVirtio
	}
	return model
}

// drive is one disk or CD-ROM as the storage plan sees it.
type drive struct {
	what      string // the Config field, for errors
	id        string
	path      string
	bus       Bus
	readOnly  bool
	cdrom     bool
	snapshot  bool
	bootIndex int // 0: none
	nvme      NVMeSlot
}

// drives lists Disk, ExtraDisks and Drives in the order they are attached, with boot indexes:
// 1 for the disk that boots (a Drive with Boot, else Disk), 2 for Disk when a Drive boots.
// bootindex is never 0: -kernel claims it.
func (c Config) drives() []drive {
	bootDrive := slices.IndexFunc(c.Drives, func(d Drive) bool { return d.Boot })
	var ds []drive
	if c.Disk != "" {
		idx := 1
		if bootDrive >= 0 {
			idx = 2
		}
		ds = append(ds, drive{what: "Disk", id: "disk0", path: c.Disk, bus: c.DiskBus, snapshot: c.Snapshot, bootIndex: idx, nvme: c.DiskNVMe})
	}
	for i, p := range c.ExtraDisks {
		ds = append(ds, drive{what: fmt.Sprintf("ExtraDisks[%d]", i), id: "disk" + strconv.Itoa(i+1), path: p, bus: BusVirtio, readOnly: true})
	}
	for i, d := range c.Drives {
		x := drive{what: fmt.Sprintf("Drives[%d]", i), id: "disk" + strconv.Itoa(1+len(c.ExtraDisks)+i), path: d.Path, bus: d.Bus,
			readOnly: d.ReadOnly || d.CDROM, cdrom: d.CDROM, nvme: d.NVMe}
		if i == bootDrive {
			x.bootIndex = 1
		}
		ds = append(ds, x)
	}
	for i := range ds {
		if ds[i].bus == "" {
			ds[i].bus = BusVirtio
		}
	}
	return ds
}

// storageArgs is the -drive and -device arguments of every disk: the controllers first (NVMe in
// Controller order, then PVSCSI, then xHCI), then each disk's backend and device. It fails on a
// combination QEMU or the firmware cannot attach, naming the Config field.
func (c Config) storageArgs() ([]string, error) {
	ds := c.drives()
	if n := len(slices.DeleteFunc(slices.Clone(c.Drives), func(d Drive) bool { return !d.Boot })); n > 1 {
		return nil, fmt.Errorf("qemu: config: %d Drives have Boot; at most one boots", n)
	}

	// NVMe: namespace IDs per controller, the explicit ones first.
	nsids := map[int]map[int]bool{}
	var controllers []int
	for _, d := range ds {
		if d.bus != BusNVMe {
			continue
		}
		if d.nvme.Controller < 0 || d.nvme.NSID < 0 {
			return nil, fmt.Errorf("qemu: config: %s: NVMe controller %d, namespace %d: want >= 0", d.what, d.nvme.Controller, d.nvme.NSID)
		}
		if nsids[d.nvme.Controller] == nil {
			nsids[d.nvme.Controller] = map[int]bool{}
			controllers = append(controllers, d.nvme.Controller)
		}
		if d.nvme.NSID > 0 {
			if nsids[d.nvme.Controller][d.nvme.NSID] {
				return nil, fmt.Errorf("qemu: config: %s: NVMe controller %d has namespace %d twice", d.what, d.nvme.Controller, d.nvme.NSID)
			}
			nsids[d.nvme.Controller][d.nvme.NSID] = true
		}
	}
	for i := range ds {
		if ds[i].bus != BusNVMe || ds[i].nvme.NSID > 0 {
			continue
		}
		used := nsids[ds[i].nvme.Controller]
		n := 1
		for used[n] {
			n++
		}
		used[n] = true
		ds[i].nvme.NSID = n
	}
	slices.Sort(controllers)

	var args []string
	for _, n := range controllers {
		args = append(args, "-device", fmt.Sprintf("nvme,id=nvme%d,serial=ballast-nvme%d", n, n))
	}
	if slices.ContainsFunc(ds, func(d drive) bool { return d.bus == BusPVSCSI }) {
		args = append(args, "-device", "pvscsi,id=pvscsi0")
	}
	if slices.ContainsFunc(ds, func(d drive) bool { return d.bus == BusUSB }) {
		args = append(args, "-device", "qemu-xhci,id=xhci")
	}

	port, target := 0, 0
	for _, d := range ds {
		backend := "if=none,id=" + d.id + ",format=" + diskFormat(d.path)
		if d.readOnly {
			backend += ",readonly=on"
		}
		backend += ",file=" + escape(d.path)
		if d.snapshot {
			backend += ",snapshot=on"
		}
		var dev string
		switch d.bus {
		case BusVirtio:
			if d.cdrom {
				return nil, fmt.Errorf("qemu: config: %s: a CD-ROM on %s; CD-ROMs are on %s or %s", d.what, d.bus, BusAHCI, BusPVSCSI)
			}
			dev = "virtio-blk-pci,drive=" + d.id
		case BusNVMe:
			if d.cdrom {
				return nil, fmt.Errorf("qemu: config: %s: a CD-ROM on %s; CD-ROMs are on %s or %s", d.what, d.bus, BusAHCI, BusPVSCSI)
			}
			dev = fmt.Sprintf("nvme-ns,drive=%s,bus=nvme%d,nsid=%d", d.id, d.nvme.Controller, d.nvme.NSID)
		case BusAHCI:
			if !machines[c.Arch.Or()].ahci {
				return nil, fmt.Errorf("qemu: config: %s: %s is q35's built-in controller; the %s machine has none (use %s, %s or %s)", d.what, d.bus, c.Arch.Or(), BusVirtio, BusNVMe, BusUSB)
			}
			if port == ahciPorts {
				return nil, fmt.Errorf("qemu: config: %s: the AHCI controller has %d ports, all taken", d.what, ahciPorts)
			}
			kind := "ide-hd"
			if d.cdrom {
				kind = "ide-cd"
			} else if d.readOnly {
				return nil, fmt.Errorf("qemu: config: %s: QEMU's AHCI disk (ide-hd) refuses read-only images; make it a CD-ROM or use another bus", d.what)
			}
			dev = fmt.Sprintf("%s,drive=%s,bus=ide.%d", kind, d.id, port)
			port++
		case BusPVSCSI:
			kind := "scsi-hd"
			if d.cdrom {
				kind = "scsi-cd"
			}
			dev = fmt.Sprintf("%s,drive=%s,bus=pvscsi0.0,channel=0,scsi-id=%d,lun=0", kind, d.id, target)
			target++
		case BusUSB:
			if d.cdrom {
				return nil, fmt.Errorf("qemu: config: %s: a CD-ROM on %s; CD-ROMs are on %s or %s", d.what, d.bus, BusAHCI, BusPVSCSI)
			}
			dev = "usb-storage,drive=" + d.id + ",bus=xhci.0"
		default:
			return nil, fmt.Errorf("qemu: config: %s: unknown bus %q (want %s, %s, %s, %s or %s)", d.what, d.bus, BusVirtio, BusNVMe, BusAHCI, BusPVSCSI, BusUSB)
		}
		if d.bootIndex > 0 {
			dev += ",bootindex=" + strconv.Itoa(d.bootIndex)
		}
		args = append(args, "-drive", backend, "-device", dev)
	}
	return args, nil
}

// kernelArgs is the direct kernel boot: OVMF loads the kernel (or UKI) from QEMU's fw_cfg and
// starts it with the command line, ahead of every disk.
func (c Config) kernelArgs() []string {
	if c.Kernel == "" {
		return nil
	}
	args := []string{"-kernel", c.Kernel}
	if c.Initrd != "" {
		args = append(args, "-initrd", c.Initrd)
	}
	if c.Append != "" {
		args = append(args, "-append", c.Append)
	}
	return args
}

// validateDevices checks the fields this file adds to Config.
func (c Config) validateDevices() error {
	var errs []error
	if _, err := c.storageArgs(); err != nil {
		errs = append(errs, err)
	}
	if !validNIC(c.NIC) {
		errs = append(errs, fmt.Errorf("qemu: config: NIC %q: want %s, %s or %s", c.NIC, NICVirtio, NICE1000e, NICVmxnet3))
	}
	for i, n := range c.TapNICs {
		if !validNIC(n.Model) {
			errs = append(errs, fmt.Errorf("qemu: config: TapNICs[%d]: model %q: want %s, %s or %s", i, n.Model, NICVirtio, NICE1000e, NICVmxnet3))
		}
	}
	if err := c.SMBIOS.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Kernel == "" && (c.Initrd != "" || c.Append != "") {
		errs = append(errs, errors.New("qemu: config: Initrd and Append need a Kernel"))
	}
	return errors.Join(errs...)
}
