package system

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/supervise"
)

// servicePath is the PATH every service gets.
const servicePath = "PATH=/usr/bin:/usr/sbin"

// service makes the supervised service of a program from its entry in contract.Programs.
func (i *Init) service(p contract.Program) (supervise.Service, error) {
	s := p.Service
	if s == nil {
		return supervise.Service{}, fmt.Errorf("program %s runs no service", p.Name)
	}
	if p.DevOnly && !i.image.Dev {
		return supervise.Service{}, fmt.Errorf("%s is for dev variants only", s.ID)
	}
	x := &supervise.Exec{
		Reaper: i.reaper,
		Path:   p.Path,
		Args:   s.Args,
		Env:    append([]string{servicePath}, s.Env...),
	}
	if s.EnvFile != "" {
		x.EnvFile = i.path(s.EnvFile)
	}
	x.ArgsEnv = s.ArgsEnv
	svc := supervise.Service{ID: s.ID, Runner: x, StopSignal: s.StopSignal}
	// A dependency the image does not run has nothing to wait for, and the supervisor refuses
	// unknown ones.
	for _, d := range s.Depends {
		if slices.Contains(i.image.Services, d) {
			svc.Depends = append(svc.Depends, d)
		}
	}
	for _, d := range s.StopsBefore {
		if slices.Contains(i.image.Services, d) {
			svc.StopsBefore = append(svc.StopsBefore, d)
		}
	}
	switch s.Restart {
	case contract.RestartAlways:
		svc.Restart = supervise.RestartAlways
	case contract.RestartOnFailure:
		svc.Restart = supervise.RestartOnFailure
	case contract.RestartNever:
		svc.Restart = supervise.RestartNever
	default:
		return supervise.Service{}, fmt.Errorf("%s: unknown restart policy %d", s.ID, s.Restart)
	}
	switch s.Ready {
	case contract.ReadyWhenStarted:
	case contract.ReadyWhenAPIAnswers:
		svc.Ready = newAPIClient(i.path(contract.APISocket)).ready
	case contract.ReadyWhenListening:
		sock := i.path(s.Socket)
		svc.Ready = func(ctx context.Context) error { return socketAccepts(ctx, sock) }
	default:
		return supervise.Service{}, fmt.Errorf("%s: unknown readiness %d", s.ID, s.Ready)
	}
	if !s.Console {
		log, err := i.logs.Source(s.ID)
		if err != nil {
			return supervise.Service{}, err
		}
		x.Log, x.Console = log, i.console
		return svc, nil
	}
	// A console service is the dev shell: on the console's terminal, after the ready line and
	// the motd, so the console reads in order and the prompt comes last. Its home is on the data
	// partition: the root is read-only, and a shell history that survives a reboot helps the
	// person debugging.
	home := contract.ShellHome
	if err := os.MkdirAll(i.path(home), 0o700); err != nil {
		i.console.Errorf("%s: %v; HOME is /tmp", s.ID, err)
		home = "/tmp"
	}
	x.TTY, x.Dir = i.consoleTTY(), home
	x.Env = append(x.Env, "HOME="+home)
	svc.Condition = func(ctx context.Context) error {
		select {
		case <-i.announced:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return svc, nil
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
	var svcs []supervise.Service
	var errs []error
	seen := map[string]bool{}
	for _, id := range i.image.Services {
		if seen[id] {
			continue
		}
		seen[id] = true
		p, err := contract.FindService(id)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", contract.ImageInfoPath, err))
			continue
		}
		svc, err := i.service(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s not started: %w", id, err))
			continue
		}
		svcs = append(svcs, svc)
	}
	return svcs, errs
}

// readyService is the enabled service whose readiness is the API answering: the ready line waits
// for it. "" when the image runs none.
func (i *Init) readyService() string {
	for _, id := range i.image.Services {
		if p, err := contract.FindService(id); err == nil && p.Service.Ready == contract.ReadyWhenAPIAnswers {
			return id
		}
	}
	return ""
}

// readyLineServices are the enabled services besides the API's that the ready line waits for.
func (i *Init) readyLineServices() []string {
	var ids []string
	for _, id := range i.image.Services {
		if p, err := contract.FindService(id); err == nil && p.Service.ReadyLine {
			ids = append(ids, id)
		}
	}
	return ids
}

// socketAccepts returns nil once a connection to the Unix socket path is accepted.
func socketAccepts(ctx context.Context, path string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return err
	}
	return c.Close()
}
