// Command initramfs-init is /init in Ballast's initramfs: it verifies and mounts the root, then
// hands PID 1 to the system init. It never offers a shell: any failure reboots (fail closed).
package main

import (
	"context"
	"io"
	"log"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/initramfs"
)

func main() {
	log.SetOutput(io.Discard) // u-root's switch_root narrates every step; the milestones suffice
	con := console.Default
	if err := initramfs.Run(context.Background(), con); err != nil {
		fail(con, err)
	}
	con.Milestone("switch-root", "exec %s", initramfs.SystemInit)
	if err := mount.SwitchRoot(initramfs.NewRoot, initramfs.SystemInit); err != nil {
		fail(con, err)
	}
}

func fail(con *console.Writer, err error) {
	con.Errorf("%v", err)
	con.Errorf("boot failed; rebooting in 10s")
	time.Sleep(10 * time.Second)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	select {}
}
