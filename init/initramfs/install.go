//go:build ballast_installer

package initramfs

import (
	"context"
	"io"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/iso"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/installer"
	"github.com/ballast-os/ballast/init/kmod"
)

// install runs the installer instead of booting a root (the installer ISO's and netboot's UKI).
// It returns only when the installer could neither reboot nor halt.
func install(ctx context.Context, con *console.Writer, c contract.Cmdline) error {
	con.Milestone("initramfs", "installer")
	gatherEntropy(ctx, con) // TLS to a network source needs the random pool
	l, err := kmod.New("/", "")
	if err != nil {
		return err
	}
	if err := l.LoadAll(); err != nil {
		return err
	}
	// The medium and the target disks appear as their drivers load: a CD-ROM behind AHCI, a
	// USB stick behind xhci and usb-storage, a disk behind a RAID controller.
	rescan := func() { Coldplug(con, l) }
	rescan()
	return installer.Run(ctx, con, installer.Config{
		Rescan:     rescan,
		Cmdline:    c,
		OpenMedium: openISO,
		Volume:     writeISO,
		ReadFAT:    installer.MountFAT("/run"),
		Network:    installer.DHCP(con, "/etc/resolv.conf", 30*time.Second),
	})
}

// isoMedium reads the installer medium's files from its ISO9660 volume.
type isoMedium struct {
	r  io.ReaderAt
	im *iso.Image
}

func openISO(r io.ReaderAt) (installer.Medium, error) {
	im, err := iso.Open(r)
	if err != nil {
		return nil, err
	}
	return isoMedium{r: r, im: im}, nil
}

func (m isoMedium) Open(_ context.Context, name string) (io.ReadCloser, int64, error) {
	off, size, err := m.im.Lookup(name)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(io.NewSectionReader(m.r, off, size)), size, nil
}

// writeISO writes the seed: a NoCloud volume as ISO9660.
func writeISO(w io.WriterAt, label string, modTime time.Time, files []installer.File) (int64, error) {
	fs := make([]iso.File, 0, len(files))
	for _, f := range files {
		fs = append(fs, iso.File{Path: f.Path, Data: f.Data})
	}
	return iso.Write(w, iso.Options{VolumeID: label, Time: modTime}, fs)
}
