package system

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/init/system/supervise"
)

func TestEnabledServices(t *testing.T) {
	tests := []struct {
		name     string
		image    contract.Image
		want     []string
		wantErrs []string
		deps     map[string][]string // what the enabled services wait for
	}{
		{"dev", contract.Image{Dev: true, Services: []string{"apiserver", "console-shell"}}, []string{"apiserver", "console-shell"}, nil, nil},
		{"production", contract.Image{Services: []string{"apiserver"}}, []string{"apiserver"}, nil, nil},
		{"shell without dev", contract.Image{Services: []string{"apiserver", "console-shell"}}, []string{"apiserver"},
			[]string{"service console-shell not started: console-shell is for dev variants only"}, nil},
		{"unknown", contract.Image{Services: []string{"sshd", "apiserver"}}, []string{"apiserver"},
			[]string{`/usr/lib/ballast/image.json: unknown service "sshd"`}, nil},
		{"listed twice", contract.Image{Services: []string{"apiserver", "apiserver"}}, []string{"apiserver"}, nil, nil},
		{"none", contract.Image{}, nil, nil, nil},
		{"time after the apiserver", contract.Image{Services: []string{"apiserver", "time"}}, []string{"apiserver", "time"}, nil,
			map[string][]string{"time": {"apiserver"}}},
		// Nothing renders its configuration then, but it must not keep the supervisor from starting.
		{"time without the apiserver", contract.Image{Services: []string{"time"}}, []string{"time"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, _, _ := testInit(t)
			i.image = tt.image
			svcs, errs := i.enabledServices()
			var got, gotErrs []string
			for _, s := range svcs {
				got = append(got, s.ID)
			}
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(gotErrs, tt.wantErrs) {
				t.Errorf("services %q, errors %q; want %q, %q", got, gotErrs, tt.want, tt.wantErrs)
			}
			// Whatever is enabled must make a valid supervisor.
			if _, err := supervise.New(supervise.Options{}, svcs...); err != nil {
				t.Error(err)
			}
			for _, s := range svcs {
				want := tt.deps[s.ID]
				if !slices.Equal(s.Depends, want) {
					t.Errorf("%s depends on %q, want %q", s.ID, s.Depends, want)
				}
			}
		})
	}
}

func TestAPIServerService(t *testing.T) {
	i, _, _ := testInit(t)
	svc, err := i.service(mustProgram(t, "apiserver"))
	if err != nil {
		t.Fatal(err)
	}
	x := svc.Runner.(*supervise.Exec)
	cmd := strings.Join(append([]string{x.Path}, x.Args...), " ")
	want := "/usr/bin/apiserver --boot-modules=" + contract.BootModules
	if cmd != want {
		t.Errorf("command = %q, want %q", cmd, want)
	}
	if x.Log == nil || svc.Restart != supervise.RestartAlways || svc.Ready == nil {
		t.Errorf("service = %+v, runner = %+v", svc, x)
	}
	// Nothing listens in the test's root: not ready.
	if err := svc.Ready(context.Background()); err == nil {
		t.Error("ready without an apiserver")
	}
}

func TestConsoleShellService(t *testing.T) {
	tests := []struct {
		name, active string
		devs         []string
		want         string
	}{
		{"serial", "ttyS0\n", []string{"/dev/ttyS0"}, "/dev/ttyS0"},
		{"last is /dev/console", "tty0 ttyS0\n", []string{"/dev/tty0", "/dev/ttyS0"}, "/dev/ttyS0"},
		{"no node", "ttyS1\n", nil, "/dev/console"},
		{"no sysfs", "", nil, "/dev/console"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, _, _ := testInit(t)
			i.image.Dev = true
			if tt.active != "" {
				write(t, i, "/sys/class/tty/console/active", tt.active)
			}
			for _, d := range tt.devs {
				write(t, i, d, "")
			}
			svc, err := i.service(mustProgram(t, "console-shell"))
			if err != nil {
				t.Fatal(err)
			}
			x := svc.Runner.(*supervise.Exec)
			if x.TTY != tt.want || x.Path != "/usr/bin/sh" || x.Dir != "/local/root" {
				t.Errorf("runner = %+v, want TTY %s", x, tt.want)
			}
			if svc.StopSignal != syscall.SIGHUP || svc.Restart != supervise.RestartAlways {
				t.Errorf("service = %+v", svc)
			}
			if !slices.Contains(x.Env, "PATH=/usr/bin:/usr/sbin") || !slices.Contains(x.Env, "HOME=/local/root") {
				t.Errorf("env = %q", x.Env)
			}
			// It waits for the ready line.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := svc.Condition(ctx); err == nil {
				t.Error("condition met before the ready line")
			}
			close(i.announced)
			if err := svc.Condition(context.Background()); err != nil {
				t.Errorf("condition after the ready line: %v", err)
			}
		})
	}
}

func mustProgram(t *testing.T, name string) contract.Program {
	t.Helper()
	p, err := contract.FindProgram(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every service of the table makes a valid supervised service in a dev image.
func TestEveryTableService(t *testing.T) {
	i, _, _ := testInit(t)
	i.image.Dev = true
	var svcs []supervise.Service
	for _, p := range contract.Programs() {
		if p.Service == nil {
			continue
		}
		svc, err := i.service(p)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if x := svc.Runner.(*supervise.Exec); x.Path != p.Path || svc.ID != p.Service.ID {
			t.Errorf("%s: runs %s as %s", p.Name, x.Path, svc.ID)
		}
		svcs = append(svcs, svc)
	}
	if _, err := supervise.New(supervise.Options{}, svcs...); err != nil {
		t.Error(err)
	}
	if _, err := i.service(mustProgram(t, "apiclient")); err == nil {
		t.Error("a tool became a service")
	}
}
