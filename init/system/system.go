// Package system is Ballast's system init: PID 1 on the read-only root after the initramfs
// switched to it. It mounts what the system still needs, loads the image's kernel modules,
// supervises the image's services, prints the ready line when the API answers, reaps orphans,
// and shuts the machine down on the power button or on poweroff/reboot/halt signals.
//
// Everything that needs PID 1 goes through the Kernel interface and the few files under Root,
// so the rest runs in tests as an ordinary process.
package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/kmod"
	"github.com/ballast-os/ballast/init/system/powerbutton"
	"github.com/ballast-os/ballast/init/system/reap"
	"github.com/ballast-os/ballast/init/system/supervise"
)

// Hostname is the host name until settings, DHCP or cloud metadata give one.
const Hostname = contract.DefaultHostname

// Config connects the system init to the machine; zero fields take the defaults in brackets.
type Config struct {
	// Root is where the files of the running system are ["/"]. Tests point it at a directory;
	// the Kernel and the services always see the machine's own paths.
	Root    string
	Console *console.Writer // [console.Default]
	Kernel  Kernel          // [Linux]
	// Reaper must be the process's only one [a new one, run by Run].
	Reaper *reap.Reaper
	// LoadModules loads kernel modules and their dependencies [kmod.Load("/", names...)].
	LoadModules func(names ...string) error
	// Supervise tunes the supervisor; its Console is always the init's.
	Supervise   supervise.Options
	PowerButton powerbutton.Watcher
}

// Init is the system init.
type Init struct {
	root        string
	console     *console.Writer
	kernel      Kernel
	reaper      *reap.Reaper
	runReaper   bool
	loadModules func(names ...string) error
	supOpts     supervise.Options
	button      powerbutton.Watcher
	killPoll    time.Duration
	killWait    [2]time.Duration // after SIGTERM, after SIGKILL

	image     contract.Image
	identity  contract.Identity
	sup       *supervise.Supervisor
	announced chan struct{} // closed once the ready line (or the reason there is none) is out
	requests  chan Action   // shutdowns asked for over the init socket, run by Run's loop
	shutDown  bool          // the shutdown sequence ran; later requests only retry reboot(2)
}

// New returns a system init; Run starts it.
func New(cfg Config) *Init {
	i := &Init{
		root:        cfg.Root,
		console:     cfg.Console,
		kernel:      cfg.Kernel,
		reaper:      cfg.Reaper,
		loadModules: cfg.LoadModules,
		supOpts:     cfg.Supervise,
		button:      cfg.PowerButton,
		killPoll:    50 * time.Millisecond,
		killWait:    [2]time.Duration{5 * time.Second, 2 * time.Second},
		announced:   make(chan struct{}),
		requests:    make(chan Action, 1),
	}
	if i.root == "" {
		i.root = "/"
	}
	if i.console == nil {
		i.console = console.Default
	}
	if i.kernel == nil {
		i.kernel = Linux{}
	}
	if i.reaper == nil {
		i.reaper = reap.New()
		i.runReaper = true
	}
	if i.loadModules == nil {
		i.loadModules = func(names ...string) error { return kmod.Load("/", names...) }
	}
	i.supOpts.Console = i.console
	return i
}

// Run boots the system and then serves signals and the power button until ctx is done, which
// on a machine is never: PID 1 must not return.
func (i *Init) Run(ctx context.Context) {
	// First, before anything can fail: a signal the Go runtime does not expect to be handled
	// makes it exit, and PID 1 exiting panics the kernel.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, caughtSignals()...)
	defer signal.Stop(sigc)
	if i.runReaper {
		go i.reaper.Run(ctx)
	}

	i.boot(ctx)

	presses := make(chan struct{}, 1)
	go func() {
		err := i.button.Watch(ctx, func() {
			select {
			case presses <- struct{}{}:
			default:
			}
		})
		if err != nil && ctx.Err() == nil {
			i.console.Errorf("power button: %v", err)
		}
	}()

	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigc:
			i.onSignal(sig.(syscall.Signal))
		case <-presses:
			i.Shutdown(PowerOff, "power button")
		case act := <-i.requests:
			i.Shutdown(act, "init socket")
		}
	}
}

// boot runs the start-up steps; each reports its failures and boot goes on, because a system
// with an API is more use than one that stopped at the first error.
func (i *Init) boot(ctx context.Context) {
	if err := i.kernel.DisableCtrlAltDel(); err != nil {
		i.console.Errorf("ctrl-alt-del: %v", err)
	}
	i.report("mounts", i.mountAll())
	i.readIdentity()
	i.console.Milestone("init", "variant=%s version=%s services=%s", i.image.Variant, i.image.Version,
		strings.Join(i.image.Services, ","))
	if len(i.image.Modules) > 0 {
		if err := i.loadModules(i.image.Modules...); err != nil {
			i.report("modules", err)
		} else {
			i.console.Milestone("modules", "loaded %s", strings.Join(i.image.Modules, ","))
		}
	}
	if err := i.kernel.Sethostname(Hostname); err != nil {
		i.console.Errorf("hostname: %v", err)
	}
	i.startServices()
	i.serveInitSocket(ctx)
	go i.announce(ctx)
}

// readIdentity reads image.json, os-release and the kernel command line. Without image.json
// the init still runs the apiserver, so the machine can be looked at.
func (i *Init) readIdentity() {
	img, err := contract.ReadImage(i.root)
	if err != nil {
		i.console.Errorf("%v; running the apiserver only", err)
		img = contract.Image{Services: contract.ServicesOf([]string{"apiserver"})}
	}
	i.image = img
	id, err := contract.ReadIdentity(i.root)
	if err != nil {
		i.console.Errorf("%v", err)
	}
	i.identity = id
}

func (i *Init) startServices() {
	svcs, errs := i.enabledServices()
	for _, err := range errs {
		i.console.Errorf("%v", err)
	}
	sup, err := supervise.New(i.supOpts, svcs...)
	if err == nil {
		err = sup.Start()
	}
	if err != nil {
		i.console.Errorf("services: %v", err)
		return
	}
	i.sup = sup
}

// announce prints the ready line once the API answers, then the motd. This is the console
// contract the image tests wait for; it is printed once per boot even if the apiserver restarts.
func (i *Init) announce(ctx context.Context) {
	defer close(i.announced)
	api := i.readyService()
	if i.sup == nil || api == "" {
		i.console.Errorf("no service serves the API: no ready line")
		return
	}
	if err := i.sup.WaitReady(ctx, api); err != nil {
		if ctx.Err() == nil {
			i.console.Errorf("no ready line: %v", err)
		}
		return
	}
	i.console.Milestone("ready", "%s", i.identity.ReadyLine())
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	motd, err := newAPIClient(i.path(contract.APISocket)).motd(mctx)
	if err != nil {
		i.console.Errorf("motd: %v", err)
		return
	}
	if motd != "" {
		i.console.Raw(motd)
	}
}

// report prints each error err holds (errors.Join) on its own console line.
func (i *Init) report(what string, err error) {
	if err == nil {
		return
	}
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			i.report(what, e)
		}
		return
	}
	i.console.Errorf("%s: %v", what, err)
}

// caughtSignals are the signals PID 1 takes through signal.Notify. Beyond the shutdown requests
// this is every signal whose default action ends a process: unhandled, the Go runtime would
// exit on them. They are caught rather than ignored because an ignored disposition would be
// inherited by every service across exec.
func caughtSignals() []os.Signal {
	return []os.Signal{
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT,
		syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGPWR,
		syscall.SIGVTALRM, syscall.SIGPROF, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGIO,
		syscall.SIGSTKFLT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGABRT,
		syscall.SIGTRAP, syscall.SIGSYS,
	}
}

// actionFor maps the signals busybox's poweroff, reboot and halt send to PID 1, and the
// kernel's Ctrl-Alt-Del, to what they ask for.
func actionFor(sig syscall.Signal) (Action, bool) {
	switch sig {
	case syscall.SIGUSR2:
		return PowerOff, true
	case syscall.SIGTERM, syscall.SIGINT:
		return Reboot, true
	case syscall.SIGUSR1:
		return Halt, true
	}
	return 0, false
}

func (i *Init) onSignal(sig syscall.Signal) {
	if act, ok := actionFor(sig); ok {
		i.Shutdown(act, signalName(sig))
		return
	}
	if sig == syscall.SIGQUIT {
		// Go would dump the goroutines and exit; PID 1 dumps them and stays.
		buf := make([]byte, 1<<20)
		i.console.Raw(string(buf[:runtime.Stack(buf, true)]))
		return
	}
	i.console.Milestone("signal", "ignoring %s", signalName(sig))
}

func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}
