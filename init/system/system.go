// Package system is Ballast's system init: PID 1 on the read-only root after the initramfs
// switched to it. It mounts what the system still needs (the ESP and efivarfs among it), loads
// the image's kernel modules, supervises the image's services, prints the ready line when the API
// answers, judges the boot's health (blessing a trial boot entry, or giving it up and rebooting:
// boothealth.go), reaps orphans, and shuts the machine down on the power button or on
// poweroff/reboot/halt signals.
//
// Everything that needs PID 1 goes through the Kernel interface and the few files under Root,
// so the rest runs in tests as an ordinary process.
package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/initramfs/blockdev"
	"github.com/ballast-os/ballast/init/kmod"
	"github.com/ballast-os/ballast/init/logind"
	"github.com/ballast-os/ballast/init/marker"
	"github.com/ballast-os/ballast/init/system/logs"
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
	// LoadModules loads kernel modules and their dependencies [kmod.Load("/", names...), refusing
	// what the kernel policy blocks].
	LoadModules func(names ...string) error
	// Coldplug loads the on-demand modules (contract.ModulesOnDemand) the devices present ask
	// for and returns their names [kmod.Loader.Coldplug on "/", refusing what the kernel policy
	// blocks].
	Coldplug func() ([]string, error)
	// Supervise tunes the supervisor; its Console is always the init's.
	Supervise   supervise.Options
	PowerButton powerbutton.Watcher
	// Random gets the kernel's random pool initialised and returns what it did, for the console
	// [seeding from contract.RandomSeed and gathering entropy, see randomPool].
	Random func(ctx context.Context) (string, error)
	// Logs tunes the host logs; directories are under Root [contract.PersistentLogDir,
	// contract.LogDir], and errors go to the console.
	Logs logs.Options
	// Kmsg is the kernel's log device [contract.KmsgPath under Root].
	Kmsg string
	// Partitions lists the GPT partitions of the machine's disks, to find the ESP [a
	// blockdev.Scanner on /sys and /dev under Root].
	Partitions func() ([]blockdev.Partition, error)
	// HealthPoll is how often the boot health gate looks at the services [1 s].
	HealthPoll time.Duration
}

// Init is the system init.
type Init struct {
	root        string
	console     *console.Writer
	kernel      Kernel
	reaper      *reap.Reaper
	runReaper   bool
	loadModules func(names ...string) error
	coldplug    func() ([]string, error)
	supOpts     supervise.Options
	button      powerbutton.Watcher
	random      func(ctx context.Context) (string, error)
	randomReady chan struct{} // closed once the kernel's random pool is initialised (or that failed)
	bootDone    chan struct{} // closed once the boot modules and the late mounts are done
	killPoll    time.Duration
	killWait    [2]time.Duration // after SIGTERM, after SIGKILL
	logs        *logs.Store
	kmsg        string
	kernelLog   io.Closer // the kernel log reader, closed at shutdown
	denials     int       // SELinux denials in the kernel log; only logKernel's goroutine uses it
	denialsErr  bool      // writing the count failed once

	image       contract.Image
	identity    contract.Identity
	policy      contract.KernelPolicy // as read at boot
	sysctlRetry []string              // its sysctls the kernel did not have before the modules
	sup         *supervise.Supervisor
	announced   chan struct{}        // closed once the ready line (or the reason there is none) is out
	ready       chan struct{}        // closed once the ready line is out; never when there is none
	noReady     string               // why there is no ready line, once announced is closed without one
	requests    chan shutdownRequest // shutdowns asked for by the init socket or the health gate, run by Run's loop
	shutDown    bool                 // the shutdown sequence ran; later requests only retry reboot(2)

	started    time.Time                            // when the init began; the boot health timeout counts from it
	partitions func() ([]blockdev.Partition, error) // nil: scanPartitions
	healthPoll time.Duration
	// rebootGrace is how long the health gate lets the shutdown it asked for take before it
	// reboots the machine itself.
	rebootGrace time.Duration

	// findService finds a service's program [contract.FindService]; tests give services the
	// table does not have.
	findService func(id string) (contract.Program, error)
	// nodeCheck asks whether the kubelet's Node is Ready and returns its name [kubeletNodeCheck].
	nodeCheck func(ctx context.Context) (string, error)
	nodePoll  time.Duration // how often nodeCheck is asked [defaultNodePoll]
	// podsCheck asks whether every pod of the kubelet's node has ended as the API server sees it
	// [kubeletPodsCheck]; podSettleMax bounds the shutdown's wait for it [defaultPodSettleMax].
	podsCheck     func(ctx context.Context) (string, error)
	podSettleMax  time.Duration
	podSettlePoll time.Duration // how often podsCheck is asked [defaultPodSettlePoll]
	nodes         nodeHealth
	// logind serves the kubelet's graceful node shutdown on a Kubernetes node; nil elsewhere.
	logind *logind.Server
	// inhibitDelayMax bounds the shutdown's wait for delay locks [contract.LogindInhibitDelayMax].
	inhibitDelayMax time.Duration
}

// shutdownRequest is a shutdown Run's loop is asked for.
type shutdownRequest struct {
	act   Action
	cause string
}

// New returns a system init; Run starts it.
func New(cfg Config) *Init {
	i := &Init{
		root:        cfg.Root,
		console:     cfg.Console,
		kernel:      cfg.Kernel,
		reaper:      cfg.Reaper,
		loadModules: cfg.LoadModules,
		coldplug:    cfg.Coldplug,
		supOpts:     cfg.Supervise,
		button:      cfg.PowerButton,
		random:      cfg.Random,
		randomReady: make(chan struct{}),
		bootDone:    make(chan struct{}),
		killPoll:    50 * time.Millisecond,
		killWait:    [2]time.Duration{5 * time.Second, 2 * time.Second},
		announced:   make(chan struct{}),
		ready:       make(chan struct{}),
		requests:    make(chan shutdownRequest, 1),
		started:     time.Now(),
		partitions:  cfg.Partitions,
		healthPoll:  cfg.HealthPoll,
		rebootGrace: 3 * time.Minute,
		findService: contract.FindService,
		nodePoll:    defaultNodePoll,
		// With the pods' last reports, the services' stop (servicesStopTimeout) and the kill it
		// stays within rebootGrace.
		inhibitDelayMax: contract.LogindInhibitDelayMax,
		podSettleMax:    defaultPodSettleMax,
		podSettlePoll:   defaultPodSettlePoll,
	}
	i.nodeCheck = i.kubeletNodeCheck
	i.podsCheck = i.kubeletPodsCheck
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
	if i.random == nil {
		i.random = randomPool
	}
	if i.healthPoll <= 0 {
		i.healthPoll = time.Second
	}
	if i.loadModules == nil {
		i.loadModules = func(names ...string) error {
			l, err := kmod.New("/", "")
			if err != nil {
				return err
			}
			l.Blocked = i.policy.Blocks
			return l.Load(names...)
		}
	}
	if i.coldplug == nil {
		i.coldplug = func() ([]string, error) {
			l, err := kmod.New("/", "")
			if err != nil {
				return nil, err
			}
			l.Blocked = i.policy.Blocks
			return l.Coldplug()
		}
	}
	i.supOpts.Console = i.console
	lo := cfg.Logs
	if lo.Dir == "" {
		lo.Dir = i.path(contract.PersistentLogDir)
	}
	if lo.Volatile == "" {
		lo.Volatile = i.path(contract.LogDir)
	}
	if lo.Errorf == nil {
		lo.Errorf = i.console.Errorf
	}
	i.logs = logs.New(lo)
	i.kmsg = cfg.Kmsg
	if i.kmsg == "" {
		i.kmsg = i.path(contract.KmsgPath)
	}
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
		case r := <-i.requests:
			i.Shutdown(r.act, r.cause)
		}
	}
}

// boot runs the start-up steps; each reports its failures and boot goes on, because a system
// with an API is more use than one that stopped at the first error.
func (i *Init) boot(ctx context.Context) {
	i.started = time.Now()
	// The console's lines are the init's log; they wait in memory until the logs are open.
	if src, err := i.logs.Source(contract.InitLogSource); err == nil {
		i.console.SetTee(src.Line)
	}
	if err := i.kernel.DisableCtrlAltDel(); err != nil {
		i.console.Errorf("ctrl-alt-del: %v", err)
	}
	i.report("mounts", i.mountAll())
	// In parallel with everything up to the ready line: TLS and DHCP need the pool, nothing before.
	go i.initRandom(ctx)
	i.readIdentity()
	i.console.Milestone("init", "variant=%s version=%s services=%s", i.image.Variant, i.image.Version,
		strings.Join(i.image.Services, ","))
	i.openLogs()
	// Before the modules: a network driver's interfaces take the net.*.default sysctls as they
	// are when it creates them, and the modules load under the lockdown level.
	mods := i.harden()
	i.loadOnDemand()
	if err := i.kernel.Sethostname(Hostname); err != nil {
		i.console.Errorf("hostname: %v", err)
	}
	i.report("kubernetes", i.prepareKubernetes())
	i.startLogind(ctx)
	// The services start while the modules load: the network service takes interfaces as their
	// drivers make them, and the apiserver waits for contract.BootModules only where it needs a
	// module (mounting a seed volume, a module's sysctl, blocking or loading one).
	go i.finishBoot(mods)
	i.startServices()
	i.serveInitSocket(ctx)
	go i.announce(ctx)
	go i.watchBoot(ctx)
}

// finishBoot loads the boot modules, writes the sysctls they bring and makes the late mounts,
// efivarfs and the ESP, then sets contract.BootModules and closes bootDone.
func (i *Init) finishBoot(mods []string) {
	defer close(i.bootDone)
	late := make(chan error, 1)
	go func() { late <- i.mountLate() }()
	if len(mods) > 0 {
		if err := i.loadModules(mods...); err != nil {
			i.report("modules", err)
		} else {
			i.console.Milestone("modules", "loaded %s", strings.Join(mods, ","))
		}
	}
	i.retrySysctls()
	// Set even when a module failed: the failure is reported, and waiting longer would not help.
	i.report("modules", marker.Set(i.path(contract.BootModules), []byte(strings.Join(mods, "\n")+"\n")))
	i.report("mounts", <-late)
	// After the modules: vfat and its code pages are among them.
	i.mountEFI()
}

// loadOnDemand loads the drivers of devices the initramfs found no driver for, or that appeared
// since: the on-demand modules are in the initramfs too, which loaded those of the devices it saw.
// Before the services, so the network service finds the interfaces of every network card, and
// under the kernel policy, whose blocks it respects.
func (i *Init) loadOnDemand() {
	got, err := i.coldplug()
	i.report("modules", err)
	if len(got) > 0 {
		i.console.Milestone("modules", "loaded %d on demand (%s)", len(got), strings.Join(got, ","))
	}
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

// announce prints the ready line once the API answers, then the motd (/etc/motd). This is the console
// contract the image tests wait for; it is printed once per boot even if the apiserver restarts.
func (i *Init) announce(ctx context.Context) {
	defer close(i.announced)
	api := i.readyService()
	if i.sup == nil || api == "" {
		i.noReady = "no service serves the API"
		i.console.Errorf("no service serves the API: no ready line")
		return
	}
	if err := i.sup.WaitReady(ctx, api); err != nil {
		if ctx.Err() == nil {
			i.noReady = err.Error()
			i.console.Errorf("no ready line: %v", err)
		}
		return
	}
	// Services whose work is part of the boot (the bootstrap containers): a failure is theirs to
	// explain on the console, and there is no ready line.
	for _, id := range i.readyLineServices() {
		if err := i.sup.WaitReady(ctx, id); err != nil {
			if ctx.Err() == nil {
				i.noReady = err.Error()
				i.console.Errorf("no ready line: %v", err)
			}
			return
		}
	}
	// The ready line promises that every API listener serves; the remote one needs the pool
	// for its TLS handshakes. And that the boot is over: the modules are in, the mounts made.
	for _, c := range []chan struct{}{i.randomReady, i.bootDone} {
		select {
		case <-c:
		case <-ctx.Done():
			return
		}
	}
	i.console.Milestone("ready", "%s", i.identity.ReadyLine())
	close(i.ready)
	// The apiserver renders /etc/motd from the settings before it answers.
	b, err := os.ReadFile(i.path("/etc/motd"))
	if err != nil && !os.IsNotExist(err) {
		i.console.Errorf("motd: %v", err)
		return
	}
	motd := string(b)
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
