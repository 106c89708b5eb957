package initramfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
	"github.com/ballast-os/ballast/init/initramfs/dm"
	"github.com/ballast-os/ballast/init/initramfs/growpart"
	"github.com/ballast-os/ballast/init/localcrypt"
	"github.com/ballast-os/ballast/init/luks2"
)

const (
	localDevName = "local"
	localDevNode = "/dev/ballast-local"
	// pendingRecoveryKey carries a new recovery key from the first stage, which has no /local
	// yet, to the second, which moves it to contract.RecoveryKeyPath.
	pendingRecoveryKey = "/run/ballast/recovery-key.new"
)

// openLocal grows the data partition and opens it as the image's policy and the partition say:
// unlocked with the TPM's key, encrypted on the first boot, or plain. It records the boot's trust
// for the API (contract.BootSecurityPath) and, once /local is open, extends PCR 11 so that nothing
// after the initramfs can unseal the key again. It runs before the policy is loaded: nothing
// but the kernel and this program ever holds the TPM.
func openLocal(con *console.Writer, cmdline contract.Cmdline, data blockdev.Partition) (blockdev.Partition, error) {
	lp, err := contract.ParseLocalPolicy(cmdline)
	if err != nil {
		return data, err
	}
	// The mapping's size is fixed when it is made, so the partition grows first.
	res, err := growpart.Grow(data.Disk, data.PartUUID)
	if err != nil {
		// A disk we cannot grow is still a disk we can boot from.
		con.Errorf("data: grow %s: %v (continuing at the current size)", data.Dev, err)
	} else if res.Changed {
		con.Milestone("data", "grown from %d MiB to %d MiB", res.OldSize>>20, res.NewSize>>20)
		data.Size = max(data.Size, res.NewSize)
	} else {
		con.Milestone("data", "partition kept at %d MiB", max(data.Size, res.NewSize)>>20)
	}

	var sec contract.BootSecurity
	if l, err := kernelLockdown(); err != nil {
		con.Errorf("lockdown: %v", err)
	} else {
		sec.KernelLockdown = l
	}
	tpm, tpmErr := openTPM()
	if tpm != nil {
		defer tpm.Close()
	}
	if tpmErr != nil {
		con.Errorf("tpm: %v (continuing as a machine without a TPM)", tpmErr)
	}
	var sealer localcrypt.Sealer
	noTPM := "no TPM on this machine"
	if tpm != nil {
		sealer, noTPM = tpm.sealer()
		sec.TPM = tpm.Record()
	}
	out, err := localcrypt.Open(localcrypt.Config{
		Policy: lp, Dev: data.Dev, Size: data.Size, UUID: data.PartUUID, TPM: sealer, NoTPMReason: noTPM,
		Template: func() (io.ReadCloser, error) { return os.Open(contract.LocalTemplate) },
		Map:      mapLocal(data),
	})
	if err != nil {
		return data, err
	}
	sec.Local = out.Record
	if tpm != nil {
		if err := tpm.LeaveInitrd(); err != nil {
			return data, fmt.Errorf("tpm: extend PCR 11: %w", err)
		}
		sec.TPM.LeftInitrd = true
	}
	if err := writeJSON(contract.BootSecurityPath, sec, 0o644); err != nil {
		return data, err
	}
	switch {
	case out.Record.Formatted:
		con.Milestone("local", "encrypted (LUKS2, %s) in %.2fs; the key is sealed to the TPM", out.Record.Cipher, out.Record.FormatSeconds)
		con.Raw(recoveryBanner(out.RecoveryKey))
		if err := os.WriteFile(pendingRecoveryKey, []byte(out.RecoveryKey+"\n"), 0o600); err != nil {
			return data, fmt.Errorf("local: keep the recovery key for the API: %w", err)
		}
	case out.Record.State == contract.LocalEncrypted:
		con.Milestone("local", "unlocked with the TPM in %.2fs", out.Record.UnlockSeconds)
	default:
		con.Milestone("local", "plain: %s", out.Record.Reason)
	}
	data.Dev, data.Size = out.Dev, out.Size
	return data, nil
}

// securityfs is mounted for a moment in the first stage, for the lockdown level and the TPM's
// event log; the system init mounts it again where it wants it.
const securityfs = "/sys/kernel/security"

func withSecurityfs(f func() error) error {
	if err := unix.Mount("securityfs", securityfs, "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("mount securityfs: %w", err)
	} else if err == nil {
		defer unix.Unmount(securityfs, 0)
	}
	return f()
}

// kernelLockdown reads the level the kernel chose before anything in Ballast raised it.
func kernelLockdown() (contract.Lockdown, error) {
	var l contract.Lockdown
	err := withSecurityfs(func() error {
		b, err := os.ReadFile(securityfs + "/lockdown")
		if err != nil {
			return err
		}
		l, err = contract.ParseLockdown(string(b))
		return err
	})
	return l, err
}

func recoveryBanner(key string) string {
	return "ballast: local: RECOVERY KEY (shown once; also in GET /report/boot until acknowledged):\n" +
		"ballast: local:     " + key + "\n" +
		"ballast: local: it opens /local when the TPM will not: cryptsetup open <data partition> local\n"
}

// mapLocal makes the dm-crypt device for the volume on data.
func mapLocal(data blockdev.Partition) localcrypt.Mapper {
	return func(p luks2.CryptParams) (string, error) {
		target, err := dm.Crypt{
			Cipher: p.Cipher, Key: p.Key, IVOffset: p.IVOffset,
			Dev:    fmt.Sprintf("%d:%d", data.Major, data.Minor),
			Offset: p.Offset, SectorSize: p.SectorSize, IVLargeSectors: p.IVLargeSectors,
			// On a VM the extra queues only add latency.
			NoReadWorkqueue: true, NoWriteWorkqueue: true,
		}.Target(p.Length)
		if err != nil {
			return "", err
		}
		dev, err := dm.CreateDevice(localDevName, "BALLAST-LOCAL-"+data.PartUUID, false, []dm.Target{target})
		if err != nil {
			return "", err
		}
		if err := unix.Mknod(localDevNode, unix.S_IFBLK|0o600, int(dev)); err != nil && !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("mknod %s: %w", localDevNode, err)
		}
		return localDevNode, nil
	}
}

func writeJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), mode)
}

// keepRecoveryKey moves a new recovery key onto /local (mounted under NewRoot), where the API
// shows it until it is acknowledged.
func keepRecoveryKey() error {
	b, err := os.ReadFile(pendingRecoveryKey)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dst := filepath.Join(NewRoot, contract.RecoveryKeyPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("recovery key: %w", err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		return fmt.Errorf("recovery key: %w", err)
	}
	return os.Remove(pendingRecoveryKey)
}
