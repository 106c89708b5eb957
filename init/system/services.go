package system

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/ballast-os/ballast/init/system/supervise"
)

// Names of the services an image can enable in image.json "services".
const (
	ServiceAPIServer    = "apiserver"
	ServiceConsoleShell = "console-shell"
)

// Paths the services and the init agree on (docs/contracts.md).
const (
	APISocket = "/run/api.sock"
	LogDir    = "/run/ballast/logs"
	// shellHome is on the data partition: the root is read-only, and a shell history that
	// survives a reboot helps the person debugging.
	shellHome = "/local/root"
)

// servicePath is the PATH every service gets.
const servicePath = "PATH=/usr/bin:/usr/sbin"

// catalog returns the services Ballast knows, by name. Each is built on demand, as building one
// may touch the file system.
func (i *Init) catalog() map[string]func() (supervise.Service, error) {
	return map[string]func() (supervise.Service, error){
		ServiceAPIServer:    i.apiServer,
		ServiceConsoleShell: i.consoleShell,
		ServiceNetwork:      i.network,
	}
}

func (i *Init) apiServer() (supervise.Service, error) {
	api := newAPIClient(i.path(APISocket))
	return supervise.Service{
		ID: ServiceAPIServer,
		Runner: &supervise.Exec{
			Reaper: i.reaper,
			Path:   "/usr/bin/apiserver",
			Args: []string{
				"--socket", APISocket,
				"--datastore", "/local/var/lib/ballast/datastore",
				"--etc", "/etc",
				"--os-release", "/usr/lib/os-release",
			},
			Env:     []string{servicePath},
			LogFile: LogDir + "/" + ServiceAPIServer + ".log",
			Console: i.console,
		},
		Ready:   api.ready,
		Restart: supervise.RestartAlways,
	}, nil
}

func (i *Init) consoleShell() (supervise.Service, error) {
	if !i.image.Dev {
		return supervise.Service{}, fmt.Errorf("%s is for dev variants only", ServiceConsoleShell)
	}
	home := shellHome
	if err := os.MkdirAll(i.path(home), 0o700); err != nil {
		i.console.Errorf("%s: %v; HOME is /tmp", ServiceConsoleShell, err)
		home = "/tmp"
	}
	return supervise.Service{
		ID: ServiceConsoleShell,
		// After the ready line and the motd, so the console reads in order and the prompt comes last.
		Condition: func(ctx context.Context) error {
			select {
			case <-i.announced:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Runner: &supervise.Exec{
			Reaper: i.reaper,
			Path:   "/usr/bin/sh",
			Env:    []string{servicePath, "HOME=" + home, "TERM=vt220", "SHELL=/usr/bin/sh"},
			Dir:    home,
			TTY:    i.consoleTTY(),
		},
		Restart:    supervise.RestartAlways,
		StopSignal: syscall.SIGHUP, // an interactive ash ignores SIGTERM
	}, nil
}

// consoleTTY returns the terminal behind /dev/console. A shell needs a real terminal as its
// controlling tty for job control and Ctrl-C; the kernel lists the console devices in
// /sys/class/tty/console/active and /dev/console is the last of them.
func (i *Init) consoleTTY() string {
	b, err := os.ReadFile(i.path("/sys/class/tty/console/active"))
	if err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			dev := "/dev/" + f[len(f)-1]
			if _, err := os.Stat(i.path(dev)); err == nil {
				return dev
			}
		}
	}
	return "/dev/console"
}

// enabledServices builds the services image.json lists, in its order; what cannot be built is
// reported and left out.
func (i *Init) enabledServices() ([]supervise.Service, []error) {
	known := i.catalog()
	var svcs []supervise.Service
	var errs []error
	seen := map[string]bool{}
	for _, name := range i.image.Services {
		if seen[name] {
			continue
		}
		seen[name] = true
		build, ok := known[name]
		if !ok {
			errs = append(errs, fmt.Errorf("image.json: unknown service %q", name))
			continue
		}
		svc, err := build()
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s not started: %w", name, err))
			continue
		}
		svcs = append(svcs, svc)
	}
	return svcs, errs
}
