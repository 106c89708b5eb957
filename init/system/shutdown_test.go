package system

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/init/system/mountinfo"
	"github.com/ballast-os/ballast/init/system/supervise"
)

func TestActionRebootCmd(t *testing.T) {
	tests := []struct {
		act  Action
		cmd  int
		name string
	}{
		{PowerOff, unix.LINUX_REBOOT_CMD_POWER_OFF, "power off"},
		{Reboot, unix.LINUX_REBOOT_CMD_RESTART, "reboot"},
		{Halt, unix.LINUX_REBOOT_CMD_HALT, "halt"},
	}
	for _, tt := range tests {
		if got := tt.act.rebootCmd(); got != tt.cmd || tt.act.String() != tt.name {
			t.Errorf("%v: cmd %#x, want %#x", tt.act, got, tt.cmd)
		}
	}
}

func TestShutdown(t *testing.T) {
	i, k, out := testInit(t)
	machine(t, i, "testdata/mountinfo")
	k.busy["/local"] = true
	k.alive = 2 // a straggler survives the first look after SIGTERM
	fakeAPI(t, i, "{}")
	startFakeAPIServer(t, i)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := i.sup.WaitReady(ctx, "apiserver"); err != nil {
		t.Fatal(err)
	}

	i.Shutdown(PowerOff, "power button")

	for _, st := range i.sup.Statuses() {
		if st.State != supervise.StateStopped || !strings.Contains(st.LastExit, "terminated") {
			t.Errorf("service after shutdown: %+v", st)
		}
	}
	want := []string{
		"kill -1 SIGTERM",
		"kill -1 SIGCONT",
		"sync",
		"umount /local/mnt/scratch",
		"umount /var",
		"umount /local",
		// Busy: remounted read-only instead.
		"mount  /local  0x21 ",
		"sync",
		"reboot 0x4321fedc",
	}
	if got := k.log(); !slices.Equal(got, want) {
		t.Errorf("kernel calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	lines := out.String()
	shut := strings.Index(lines, "ballast: shutdown power off (power button)\n")
	stopped := strings.Index(lines, "ballast: service apiserver stopped\n")
	off := strings.Index(lines, "ballast: power off\n")
	if shut < 0 || stopped < shut || off < stopped {
		t.Errorf("console order wrong:\n%s", lines)
	}

	// A second request does not run the sequence again; it retries reboot(2).
	n := len(k.log())
	i.Shutdown(Reboot, "SIGTERM")
	if got := k.log()[n:]; !slices.Equal(got, []string{"reboot 0x1234567"}) {
		t.Errorf("second shutdown: %q", got)
	}
}

func TestShutdownWithoutServices(t *testing.T) {
	i, k, out := testInit(t)
	// No mount table: the init still tries the data mounts it knows of.
	i.Shutdown(Halt, "SIGUSR1")
	want := []string{"kill -1 SIGTERM", "kill -1 SIGCONT", "sync", "umount /var", "umount /local", "sync", "reboot 0xcdef0123"}
	if got := k.log(); !slices.Equal(got, want) {
		t.Errorf("kernel calls %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), "ballast: halt\n") {
		t.Errorf("console:\n%s", out)
	}
}

func TestKillAllEscalates(t *testing.T) {
	i, k, out := testInit(t)
	i.killWait = [2]time.Duration{20 * time.Millisecond, 20 * time.Millisecond}
	i.killPoll = time.Millisecond
	k.alive = 1 << 30 // nothing ever dies
	i.killAll()
	got := k.log()
	if !slices.Equal(got, []string{"kill -1 SIGTERM", "kill -1 SIGCONT", "kill -1 SIGKILL"}) {
		t.Errorf("kernel calls %q", got)
	}
	if !strings.Contains(out.String(), "processes are left after SIGKILL") {
		t.Errorf("console:\n%s", out)
	}
}

func TestDataMounts(t *testing.T) {
	mounts, err := mountinfo.ReadFile("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range dataMounts(mounts) {
		got = append(got, m.MountPoint)
	}
	if want := []string{"/local/mnt/scratch", "/var", "/local"}; !slices.Equal(got, want) {
		t.Errorf("dataMounts = %q, want %q", got, want)
	}
}

func TestUnmountDataBusyBind(t *testing.T) {
	i, k, out := testInit(t)
	machine(t, i, "testdata/mountinfo")
	k.busy["/var"] = true
	k.fail["/var"] = syscall.EINVAL
	i.unmountData()
	log := k.log()
	if !slices.Contains(log, "mount  /var  0x1021 ") {
		t.Errorf("bind not remounted read-only as a bind: %q", log)
	}
	if !strings.Contains(out.String(), "unmount /var: device or resource busy; remount read-only: invalid argument") {
		t.Errorf("console:\n%s", out)
	}
}
