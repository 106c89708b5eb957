package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/disk"
	"github.com/ballast-os/ballast/images/fat"
	"github.com/ballast-os/ballast/trust/authenticode"
)

// loaderFile is systemd-boot's name in the work directory, as the systemd-boot-efi package (the
// package of the UKI stub) names it: systemd-bootx64.efi, systemd-bootaa64.efi.
func (b *builder) loaderFile() string { return filepath.Base(b.arch.SystemdBootFile()) }

// loaderConf is systemd-boot's loader.conf (keys of systemd-boot 252): boot the first entry at
// once, no command line editor (it would bypass the UKI's trusted command line), no entries of
// its own for other loaders or the firmware setup, and no random seed on the ESP to refresh.
const loaderConf = `timeout 0
editor no
auto-entries no
auto-firmware no
random-seed-mode off
`

// writeDisk formats the data partition and writes disk.raw: the ESP with systemd-boot and slot
// A's UKI as its one entry, slot A's root and verity tree, an empty slot B, and the data
// partition.
func (b *builder) writeDisk(context.Context) error {
	b.step("disk: esp (systemd-boot, %s), root-a, verity-a, root-b, verity-b, data", b.entry)
	dataImg := filepath.Join(b.work, "data.ext4")
	if err := b.mkfsExt4(dataImg, int64(b.v.Partitions.Data)); err != nil {
		return err
	}
	esp, err := b.layout.UUID(contract.PartESP)
	if err != nil {
		return err
	}
	loader, err := os.ReadFile(filepath.Join(b.stubDir, b.arch.SystemdBootFile()))
	if err != nil {
		return fmt.Errorf("%s: %w", stubPackage, err)
	}
	conf := loaderConf
	if b.keys != nil {
		if loader, err = authenticode.Sign(loader, b.keys.DBCert, b.keys.DBKey); err != nil {
			return fmt.Errorf("sign systemd-boot: %w", err)
		}
		// A machine in setup mode takes the owner's keys at its first boot, without asking:
		// that is how a fleet is provisioned. A machine with keys already ignores them.
		conf += "secure-boot-enroll force\n"
	}
	// A copy beside the UKIs, for the manifest and the tests.
	if err := os.WriteFile(filepath.Join(b.work, b.loaderFile()), loader, 0o644); err != nil {
		return err
	}
	ukiA, err := os.ReadFile(b.ukis[contract.SlotA])
	if err != nil {
		return err
	}
	vid := contract.Derive("esp-volume-id", esp.String())
	fsTime := time.Unix(b.epoch, 0).UTC()
	files := []fat.File{
		{Path: b.arch.ESPLoaderPath(), Data: loader, ModTime: fsTime},
		{Path: contract.ESPLoaderConf, Data: []byte(conf), ModTime: fsTime},
		{Path: contract.ESPEntries + "/" + b.entry, Data: ukiA, ModTime: fsTime},
		{Path: contract.ESPStaged, Dir: true, ModTime: fsTime},
	}
	if b.keys != nil {
		for _, name := range contract.EnrollFiles {
			data, err := b.keys.Auth(name)
			if err != nil {
				return err
			}
			files = append(files, fat.File{Path: contract.ESPKeysDir + "/" + name, Data: data, ModTime: fsTime})
		}
	}
	if err := b.espRoom(files); err != nil {
		return err
	}
	contents := map[contract.PartitionName]disk.Content{
		contract.PartESP: func(w io.WriterAt, size int64) error {
			return fat.Write(w, size, fat.Options{Label: "ESP", VolumeID: binary.BigEndian.Uint32(vid[:4]), Time: fsTime}, files)
		},
		contract.PartRootA:   disk.FromFile(b.rootImg),
		contract.PartVerityA: disk.FromFile(b.hashImg),
		contract.PartData:    disk.FromFile(dataImg),
	}
	b.diskPath = filepath.Join(b.Out, "disk.raw")
	return disk.Write(b.diskPath, b.layout, contents)
}

// mkfsExt4 formats the data partition's ext4 file system of size bytes into a file, rootless,
// with a fixed UUID and hash seed. Bookworm's mke2fs (1.47.0) stamps inodes and superblocks with the wall clock and knows no
// SOURCE_DATE_EPOCH, so it runs under libfaketime with the clock frozen at the build's epoch.
func (b *builder) mkfsExt4(path string, size int64, extra ...string) error {
	bin, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return fmt.Errorf("mkfs.ext4 not found: install the Debian package e2fsprogs")
	}
	faketime, err := exec.LookPath("faketime")
	if err != nil {
		return fmt.Errorf("faketime not found (needed for a reproducible ext4): install the Debian package faketime")
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	id, err := b.layout.UUID(contract.PartData)
	if err != nil {
		return err
	}
	uuid := id.String()
	frozen := time.Unix(b.epoch, 0).UTC().Format("2006-01-02 15:04:05")
	args := []string{"-f", frozen, bin, "-q", "-F", "-L", "BALLAST-DATA", "-U", uuid,
		"-E", "root_owner=0:0,hash_seed=" + uuid + ",lazy_itable_init=1,lazy_journal_init=1"}
	args = append(append(args, extra...), path, strconv.FormatInt(size>>10, 10)+"k")
	cmd := exec.Command(faketime, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC", "MKE2FS_DEVICE_SECTSIZE=512")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("data: mkfs.ext4: %w\n%s", err, out)
	}
	return nil
}

// espRoom checks that the ESP holds what an update needs at once: its files, and one more UKI
// staged beside the running one, allowing the next version's UKI espGrowth percent more than
// this one's and espReserve for the FAT and the loader's own files (random seed, counters).
func (b *builder) espRoom(files []fat.File) error {
	var used, uki int64
	for _, f := range files {
		used += int64(len(f.Data))
	}
	for _, path := range b.ukis {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		uki = max(uki, st.Size())
	}
	need := used + uki*(100+espGrowth)/100 + espReserve
	if have := int64(b.v.Partitions.ESP); need > have {
		return fmt.Errorf("%s: partitions.esp: %d MiB holds %d MiB of files and a %d MiB UKI, but an update stages a second UKI beside the first: "+
			"it needs at least %d MiB on %s (an [%s] table can give this architecture its own esp)",
			b.v.Path, have>>20, used>>20, uki>>20, (need+(1<<20)-1)>>20, b.arch, b.arch)
	}
	return nil
}

const (
	espGrowth  = 25      // percent a later version's UKI may grow
	espReserve = 2 << 20 // the FAT, its directories, and files systemd-boot writes
)
