// Command initramfs-init is /init in Ballast's initramfs: it verifies and mounts the root, loads
// the SELinux policy, then hands PID 1 to the system init. It never offers a shell: any failure
// reboots (fail closed).
//
// It runs twice as PID 1: first as the kernel's process (kernel_t), until the policy is loaded;
// then exec'd again, which the policy makes a transition to initramfs_t, for the rest.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/initramfs"
)

func main() {
	log.SetOutput(io.Discard) // u-root's switch_root narrates every step; the milestones suffice
	con := console.Default
	ctx := context.Background()
	if !initramfs.IsStage2(os.Args[1:]) {
		st, err := initramfs.Run(ctx, con)
		if err != nil {
			fail(con, err)
		}
		err = unix.Exec(initramfs.InitPath, append([]string{initramfs.InitPath}, st.Args()...), os.Environ())
		fail(con, fmt.Errorf("exec %s for the second stage: %w", initramfs.InitPath, err))
	}
	st, err := initramfs.ParseState(os.Args[1:])
	if err != nil {
		fail(con, err)
	}
	if err := initramfs.Stage2(ctx, con, st); err != nil {
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
