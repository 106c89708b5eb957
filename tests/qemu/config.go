package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Defaults applied to zero Config fields of an amd64 VM; arm64's are in arch.go.
const (
	DefaultOVMFCode         = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVarsTemplate = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	// SecureBootOVMFCode is OVMF built with Secure Boot and SMM; with the plain
	// DefaultOVMFVarsTemplate (no keys) it starts in setup mode.
	SecureBootOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	DefaultMemoryMB    = 1024
	DefaultCPUs        = 2
	// DefaultTimeout caps a VM's whole life, so a test that forgets Kill
	// cannot leave a TCG guest burning a core.
	DefaultTimeout = 15 * time.Minute
	// DefaultExpectTimeout is generous because under TCG (no KVM) OVMF alone
	// takes ~5 s and OVMF + kernel to /init ~9 s on a fast host; AAVMF
	// (arm64) takes ~8 s to its boot manager on this project's 2-core machines.
	DefaultExpectTimeout = 90 * time.Second
)

// Config describes one VM. The zero value of every field except Disk is usable.
type Config struct {
	// Arch is the guest's architecture, default contract.DefaultArch. It picks the emulator
	// (contract.ArchInfo.QEMU), the machine (q35 or virt), the firmware (OVMF or AAVMF) and the
	// TCG CPU; arm64 has no SecureBoot and no BusAHCI. Its serial console is the virt machine's
	// PL011, which Linux calls ttyAMA0.
	Arch contract.Arch

	// Disk is the image booted as the first disk, as given: the guest
	// writes to it, so callers boot a copy (or set Snapshot). Files ending in
	// .qcow2 are attached as qcow2, everything else as raw. It may be empty
	// when Kernel or a Drive with Boot is what boots.
	Disk string
	// DiskBus is the bus Disk is on, default BusVirtio; DiskNVMe places it
	// when that is BusNVMe.
	DiskBus  Bus
	DiskNVMe NVMeSlot
	// Snapshot discards the guest's writes to Disk (QEMU keeps them in a
	// temporary overlay).
	Snapshot bool
	// ExtraDisks are attached read-only, in order, after Disk; e.g. a cidata
	// FAT or ISO9660 volume.
	ExtraDisks []string
	// Drives are more disks and CD-ROMs, after ExtraDisks, each on a bus of
	// its choice.
	Drives []Drive

	MemoryMB int // default DefaultMemoryMB
	CPUs     int // default DefaultCPUs
	// CPU is the -cpu model. Default: "host" under KVM, else "max" (every feature TCG emulates,
	// RDRAND or RNDR among them; on arm64 with pauth-impdef=on). "qemu64" is an x86 CPU without
	// RDRAND, as on older or locked-down hosts.
	CPU string
	// NoRNG leaves out the virtio-rng device, so the guest's only entropy is its own.
	NoRNG bool
	// Accel is the -accel value. Default: "tcg,thread=multi", or "kvm" when
	// BALLAST_QEMU_ACCEL=kvm asks for it, /dev/kvm opens and Arch is the host's.
	Accel string
	// QEMU is the emulator binary, default Arch's (contract.ArchInfo.QEMU, looked up in PATH).
	QEMU string

	// OVMFCode is the read-only firmware image, default DefaultOVMFCode
	// (DefaultAAVMFCode on arm64).
	OVMFCode string
	// OVMFVars is the writable UEFI variable store, used as given. Set it to a
	// file you own to keep variables across VMs (like a real machine's NVRAM).
	// Empty: Start copies OVMFVarsTemplate into the VM's private temp dir;
	// Args alone attaches the template with snapshot=on so it is never written.
	OVMFVars string
	// OVMFVarsTemplate is the pristine variable store, default DefaultOVMFVarsTemplate
	// (DefaultAAVMFVarsTemplate on arm64).
	OVMFVarsTemplate string

	// SecureBoot boots the Secure Boot firmware (SecureBootOVMFCode unless OVMFCode is set) on a
	// q35 machine with SMM and a secure variable store, as that firmware requires. Whether Secure
	// Boot is enforced depends on the variable store: the default template has no keys (setup
	// mode); keep OVMFVars across VMs to keep what the guest enrolled.
	SecureBoot bool

	// TPMState is a directory holding a software TPM's state (swtpm, TPM 2.0): Start runs swtpm on
	// it for the VM's life and attaches it as a TIS device. Keep the directory across VMs to keep
	// the TPM; a new directory is a new TPM. On arm64 the TIS is virt's system-bus one. TPMSocket is swtpm's control socket, which Start sets.
	TPMState  string
	TPMSocket string
	// SWTPM is the swtpm binary, default "swtpm" in PATH.
	SWTPM string

	// AllowReboot lets a guest reboot in place. By default QEMU runs with
	// -no-reboot, so a guest reboot (including the initramfs's reboot after a
	// failure) makes QEMU exit and a test fails fast instead of looping.
	AllowReboot bool

	// NoNetwork leaves out the NIC.
	NoNetwork bool
	// NIC is the user-network NIC's model: NICVirtio (the default),
	// NICE1000e or NICVmxnet3.
	NIC string
	// HostFwd are user-networking hostfwd rules, e.g.
	// "tcp:127.0.0.1:50443-:50443". The network is always restrict=on: the
	// guest reaches nothing but what these rules and GuestFwd open.
	HostFwd []string
	// GuestFwd are user-networking guestfwd rules, e.g.
	// "tcp:10.0.2.100:80-tcp:127.0.0.1:8080" (one connection, made when QEMU starts), or
	// "tcp:10.0.2.100:80-cmd:/path/to/tcpcat 127.0.0.1:8080" (a command per guest connection:
	// tests/qemu/cmd/tcpcat).
	GuestFwd []string

	// TapNICs are NICs after the user-network one, in order (the guest names them eth1, eth2, ...):
	// tap devices the caller opened, e.g. in a network namespace of its own where it runs the
	// peers (a DHCP server), passed to QEMU as inherited files. They need no NoNetwork.
	TapNICs []TapNIC

	// SMBIOS sets the firmware's system information strings, e.g. the
	// manufacturer "Amazon EC2" that tells a guest it runs on EC2.
	SMBIOS SMBIOSSystem

	// Kernel boots this kernel or UKI directly (-kernel: OVMF loads it from
	// QEMU's fw_cfg, before every disk), with Initrd and the command line
	// Append, like a network boot does.
	Kernel, Initrd, Append string

	// QMPSocket is the path of QEMU's QMP unix socket. Start defaults it to a
	// path in the VM's temp dir; Args leaves QMP out when it is empty.
	QMPSocket string

	// Interactive puts the serial console and the QEMU monitor on the
	// terminal (-serial mon:stdio: Ctrl-A X quits, Ctrl-A C toggles the
	// monitor). For cmd/bootvm; Start refuses it.
	Interactive bool

	// LogFile, if set, receives every console line (normalized) and QEMU's
	// stderr, appended, so a failed test can point at it.
	LogFile string
	// Verbose copies the normalized console lines to os.Stdout as well.
	Verbose bool
	// Timeout caps the VM's life: Start's VM is killed when it expires.
	// Default DefaultTimeout.
	Timeout time.Duration

	// ExtraArgs are appended to the command line verbatim.
	ExtraArgs []string
}

// TapNIC is a NIC on an open tap device.
type TapNIC struct {
	File *os.File // the tap device's file (/dev/net/tun after TUNSETIFF)
	// ID names the NIC's device for VM.SetLink; its netdev is ID-net.
	ID    string
	MAC   string // e.g. "52:54:00:12:34:60"; "" lets QEMU pick one
	Model string // NICVirtio (the default), NICE1000e or NICVmxnet3
}

// Defaults returns c with every zero field that has a default filled in, as Start and Args
// see it: for cmd/bootvm, which runs the emulator itself.
func (c Config) Defaults() Config {
	if c.Arch == "" {
		c.Arch = contract.DefaultArch
	}
	// "aarch64" names arm64 too; an unknown name stays for validate to report.
	if a, err := contract.ParseArch(string(c.Arch)); err == nil {
		c.Arch = a
	}
	m, known := machines[c.Arch]
	if c.MemoryMB <= 0 {
		c.MemoryMB = DefaultMemoryMB
	}
	if c.CPUs <= 0 {
		c.CPUs = DefaultCPUs
	}
	if c.Accel == "" {
		c.Accel = "tcg,thread=multi"
		if hostArch(c.Arch) {
			c.Accel = defaultAccel()
		}
	}
	if c.QEMU == "" && known {
		c.QEMU = c.Arch.Info().QEMU
	}
	if c.OVMFCode == "" && c.SecureBoot && m.secureBoot {
		c.OVMFCode = SecureBootOVMFCode
	}
	if c.OVMFCode == "" {
		c.OVMFCode = m.code
	}
	if c.OVMFVarsTemplate == "" {
		c.OVMFVarsTemplate = m.varsTemplate
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// defaultAccel is TCG unless BALLAST_QEMU_ACCEL=kvm asks for KVM and /dev/kvm opens. KVM is not
// the default even where /dev/kvm exists: machines of this project's CI kind have shown a
// /dev/kvm (nested, kvm-pvm) that fails in OVMF with "KVM internal error ... emulation
// failure", and the tests' time budgets are set for TCG anyway.
func defaultAccel() string {
	if os.Getenv("BALLAST_QEMU_ACCEL") != "kvm" {
		return "tcg,thread=multi"
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg,thread=multi"
	}
	_ = f.Close()
	return "kvm"
}

// Validate reports the first problem that would make QEMU fail to start, or
// boot another machine than asked, naming the offending field and file; Start
// checks it, cmd/bootvm calls it before it runs the emulator itself.
func (c Config) Validate() error { return c.Defaults().validate() }

// validate is Validate of a Config with its defaults applied.
func (c Config) validate() error {
	m, err := machineOf(c.Arch)
	if err != nil {
		return err
	}
	// Secure Boot needs a firmware built for it and a variable store it trusts (SMM on x86);
	// the harness has neither for arm64.
	if c.SecureBoot && !m.secureBoot {
		return fmt.Errorf("qemu: config: SecureBoot: not supported on %s (no Secure Boot firmware setup for its machine)", c.Arch)
	}
	if c.Disk == "" && c.Kernel == "" && !slices.ContainsFunc(c.Drives, func(d Drive) bool { return d.Boot }) {
		return errors.New("qemu: config: Disk is empty (and neither Kernel nor a Drive with Boot boots)")
	}
	files := []struct{ what, path string }{
		{"OVMFCode", c.OVMFCode},
	}
	if c.Disk != "" {
		files = append(files, struct{ what, path string }{"Disk", c.Disk})
	}
	if c.OVMFVars != "" {
		files = append(files, struct{ what, path string }{"OVMFVars", c.OVMFVars})
	} else {
		files = append(files, struct{ what, path string }{"OVMFVarsTemplate", c.OVMFVarsTemplate})
	}
	for i, d := range c.ExtraDisks {
		files = append(files, struct{ what, path string }{fmt.Sprintf("ExtraDisks[%d]", i), d})
	}
	for i, d := range c.Drives {
		files = append(files, struct{ what, path string }{fmt.Sprintf("Drives[%d]", i), d.Path})
	}
	for _, f := range []struct{ what, path string }{{"Kernel", c.Kernel}, {"Initrd", c.Initrd}} {
		if f.path != "" {
			files = append(files, f)
		}
	}
	for _, f := range files {
		fi, err := os.Stat(f.path)
		if err != nil {
			return fmt.Errorf("qemu: config: %s: %w", f.what, err)
		}
		if fi.IsDir() {
			return fmt.Errorf("qemu: config: %s: %s is a directory", f.what, f.path)
		}
	}
	for i, n := range c.TapNICs {
		if n.File == nil || n.ID == "" || strings.ContainsAny(n.ID+n.MAC, ", \t\n=") {
			return fmt.Errorf("qemu: config: TapNICs[%d]: needs a File and an ID, and no commas, spaces or '=' in ID and MAC", i)
		}
	}
	for _, r := range append(append([]string(nil), c.HostFwd...), c.GuestFwd...) {
		// A guestfwd to cmd: runs a command line, which QEMU splits at spaces.
		bad := ", \t\n"
		if strings.Contains(r, "-cmd:") {
			bad = ",\t\n"
		}
		if r == "" || strings.ContainsAny(r, bad) {
			return fmt.Errorf("qemu: config: forwarding rule %q: must be non-empty without commas or spaces (spaces only in a cmd: command)", r)
		}
	}
	return c.validateDevices()
}

// Args returns the emulator's arguments (without the program name) for c,
// with defaults applied. Start and cmd/bootvm both use it, so what a test
// boots and what `make run` boots are the same machine. A Config that
// validate refuses gives arguments QEMU refuses too.
func (c Config) Args() []string {
	c = c.Defaults()
	m, _ := machineOf(c.Arch)
	cpu := m.tcgCPU
	if strings.HasPrefix(c.Accel, "kvm") {
		cpu = "host"
	}
	if c.CPU != "" {
		cpu = c.CPU
	}
	machine := m.board
	if c.SecureBoot {
		// The Secure Boot firmware keeps its variables in SMM, so that the OS cannot write them
		// behind its back; it refuses to start without.
		machine += ",smm=on"
	}
	args := []string{
		// No default VGA, CD-ROM, NIC or monitor: each of them adds a boot
		// option or a console that OVMF would otherwise try first.
		"-nodefaults",
		"-machine", machine,
		"-accel", c.Accel,
		"-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs),
		"-m", strconv.Itoa(c.MemoryMB),
		"-display", "none",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + escape(c.OVMFCode),
	}
	if c.OVMFVars != "" {
		args = append(args, "-drive", "if=pflash,format=raw,unit=1,file="+escape(c.OVMFVars))
	} else {
		args = append(args, "-drive", "if=pflash,format=raw,unit=1,snapshot=on,file="+escape(c.OVMFVarsTemplate))
	}

	if c.SecureBoot {
		args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
	}
	if s := c.SMBIOS.arg(); s != "" {
		args = append(args, "-smbios", s)
	}
	if c.TPMSocket != "" {
		args = append(args,
			"-chardev", "socket,id=chrtpm,path="+escape(c.TPMSocket),
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", m.tpmDevice+",tpmdev=tpm0")
	}

	// bootindex makes OVMF try the disk before the extra disks and the
	// shell. It is 1, not 0, because -kernel claims 0. An invalid storage
	// configuration is validate's to report; Args leaves the disks out.
	storage, _ := c.storageArgs()
	args = append(args, storage...)
	args = append(args, c.kernelArgs()...)

	if !c.NoNetwork {
		netdev := "user,id=net0,restrict=on"
		for _, r := range c.HostFwd {
			netdev += ",hostfwd=" + escape(r)
		}
		for _, r := range c.GuestFwd {
			netdev += ",guestfwd=" + escape(r)
		}
		args = append(args,
			"-netdev", netdev,
			// romfile= drops iPXE; the fw_cfg knobs drop OVMF's own PXE
			// boot options, which otherwise cost ~2 min of DHCP timeouts
			// under TCG whenever the disk does not boot.
			"-device", nicModel(c.NIC)+",netdev=net0,romfile=",
			"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
			"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
		)
	}

	for i, n := range c.TapNICs {
		// Start passes the files as ExtraFiles: descriptors 3, 4, ... in order.
		dev := nicModel(n.Model) + ",netdev=" + n.ID + "-net,id=" + n.ID + ",romfile="
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		args = append(args, "-netdev", fmt.Sprintf("tap,id=%s-net,fd=%d", n.ID, 3+i), "-device", dev)
	}

	if !c.NoRNG {
		args = append(args, "-device", "virtio-rng-pci")
	}
	args = append(args,
		// A guest with the pvpanic-pci driver reports panics, and QEMU then
		// exits non-zero instead of leaving a test to time out.
		"-device", "pvpanic-pci",
		"-action", "panic=exit-failure",
	)
	if c.Interactive {
		args = append(args, "-serial", "mon:stdio")
	} else {
		args = append(args, "-serial", "stdio")
	}
	if c.QMPSocket != "" {
		args = append(args, "-qmp", "unix:"+escape(c.QMPSocket)+",server=on,wait=off")
	}
	if !c.AllowReboot {
		args = append(args, "-no-reboot")
	}
	return append(args, c.ExtraArgs...)
}

// CommandLine returns the program and Args as one shell-readable line, for logs.
func (c Config) CommandLine() string {
	c = c.Defaults()
	words := append([]string{c.QEMU}, c.Args()...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

// escape doubles commas, QEMU's quoting inside option values, so any file
// name is passed through intact.
func escape(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}

func diskFormat(path string) string {
	if strings.EqualFold(filepath.Ext(path), ".qcow2") {
		return "qcow2"
	}
	return "raw"
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
