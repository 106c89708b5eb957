// Package hostctr is the host-container manager: it runs Ballast's bootstrap containers to
// completion at boot, then keeps the enabled host containers running, through containerd's client.
// What it runs comes from contract.ContainersConfigPath, which the apiserver renders from
// settings; a change of the file is applied at once, touching only the containers that changed.
// Each container's output is its log; its state is in contract.ContainersStatePath for GET
// /services; `apiclient exec` reaches a running container through the manager's control socket.
package hostctr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/marker"
	"github.com/ballast-os/ballast/init/system/logs"
	"github.com/ballast-os/ballast/init/system/supervise"
	"github.com/ballast-os/ballast/runtime/cni"
	"github.com/ballast-os/ballast/runtime/images"
	"github.com/ballast-os/ballast/runtime/mcs"
	"github.com/ballast-os/ballast/runtime/relabel"
)

// Manager runs the containers of a ContainersConfig. Fill the fields, then Run.
type Manager struct {
	Containerd string // containerd's socket
	Config     string // contract.ContainersConfigPath
	State      string // contract.ContainersStatePath
	Socket     string // contract.ContainersSocket
	RunDir     string // contract.ContainersDir: user data files
	StorageDir string // contract.ContainerStorageDir
	DoneFile   string // contract.ContainerBootstrapDone
	HostRoot   string // what superpowered containers get at /.ballast/rootfs: "/"
	ResolvConf string // the host's /etc/resolv.conf, bound into containers
	APIClient  string // the host's apiclient binary
	APISocket  string // the host's API socket
	Logs       *logs.Store
	Network    cni.Network
	// Out gets the manager's own lines; those starting with contract.ConsolePrefix reach the
	// console.
	Out io.Writer
	// Backoff spaces a host container's restarts.
	Backoff supervise.Backoff
	// BeforeImport, when set, is waited for before an image archive is read (the volume it may
	// be on is being mounted).
	BeforeImport func(context.Context) error
	// NoLabels runs containers without SELinux labels: the kernel has no policy loaded.
	NoLabels bool
	// Relabel labels a container's storage and user data at each start (unless NoLabels); the
	// zero value writes security.selinux.
	Relabel relabel.Labeler
	// StopTimeout is how long a container has after SIGTERM before SIGKILL [5 s].
	StopTimeout time.Duration

	client *containerd.Client
	getter *images.Getter
	mcs    mcs.Allocator

	stateMu  sync.Mutex // one writer of the state file at a time
	mu       sync.Mutex
	cfg      contract.ContainersConfig
	running  map[string]*instance // host containers by name
	statuses map[string]contract.ServiceStatus
	wg       sync.WaitGroup
}

func (m *Manager) printf(format string, args ...any) {
	if m.Out != nil {
		fmt.Fprintf(m.Out, format+"\n", args...)
	}
}

// console prints a line the system init shows on the console.
func (m *Manager) console(format string, args ...any) {
	m.printf(contract.ConsolePrefix+format, args...)
}

// Run connects to containerd, removes what an earlier instance left, runs the bootstrap
// containers, starts listening (the manager is ready), then keeps the host containers as the
// configuration says until ctx is done, when it stops them all.
func (m *Manager) Run(ctx context.Context) error {
	ctx = namespaces.WithNamespace(ctx, contract.ContainersNamespace)
	m.running = map[string]*instance{}
	m.statuses = map[string]contract.ServiceStatus{}
	if m.StopTimeout <= 0 {
		// Half the system init's own stop timeout: the containers are stopped and removed
		// before the init would kill the manager.
		m.StopTimeout = 5 * time.Second
	}
	if m.Backoff.Initial <= 0 {
		m.Backoff = supervise.Backoff{Initial: time.Second, Max: 5 * time.Minute, Reset: time.Minute}
	}
	if err := os.MkdirAll(m.RunDir, 0o700); err != nil {
		return fmt.Errorf("hostctr: %w", err)
	}
	cfg, err := m.load()
	if err != nil {
		// Bad configuration is the apiserver's bug, not the operator's: settings were validated.
		// Run nothing rather than something half understood, and say so.
		m.console("containers: %v", err)
	}
	m.cfg = cfg
	watch, err := watchFile(m.Config)
	if err != nil {
		return err
	}
	defer watch.Close()
	// Without bootstrap containers due, the manager is ready at once: the ready line does not
	// wait for containerd, which the host containers need but the boot does not.
	var srv *http.Server
	serve := func() error {
		ln, err := m.listen()
		if err != nil {
			return err
		}
		srv = &http.Server{Handler: m.controlHandler(ctx), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		return nil
	}
	defer func() {
		if srv != nil {
			srv.Close()
		}
	}()
	if len(m.bootstrapDue(cfg)) == 0 {
		if err := serve(); err != nil {
			return err
		}
	}
	if m.client, err = m.connect(ctx); err != nil {
		return err
	}
	defer m.client.Close()
	m.getter = &images.Getter{Client: m.client, Logf: m.printf, BeforeImport: m.BeforeImport}
	m.setRegistry(cfg)
	m.cleanup(ctx)

	if err := m.bootstrap(ctx, cfg); err != nil {
		// An essential bootstrap container failed: the boot stops before the ready line. The
		// manager stays up without listening, so the operator can read why through the API.
		m.console("boot stopped: %v", err)
		<-ctx.Done()
		return nil
	}
	if srv == nil {
		if err := serve(); err != nil {
			return err
		}
	}
	m.reconcile(ctx, cfg)
	for {
		select {
		case <-ctx.Done():
			m.stopAll()
			return nil
		case <-watch.C:
			cfg, err := m.load()
			if err != nil {
				m.printf("containers: %v; keeping the containers as they are", err)
				continue
			}
			m.setRegistry(cfg)
			m.reconcile(ctx, cfg)
		}
	}
}

func (m *Manager) load() (contract.ContainersConfig, error) {
	var cfg contract.ContainersConfig
	b, err := os.ReadFile(m.Config)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", m.Config, err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return contract.ContainersConfig{}, fmt.Errorf("%s: %w", m.Config, err)
	}
	return cfg, nil
}

func (m *Manager) setRegistry(cfg contract.ContainersConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = cfg
	m.getter.Registry, m.getter.Proxy, m.getter.NoProxy = cfg.Registry, cfg.Proxy, cfg.NoProxy
}

// connect waits for containerd: it starts beside the manager and may restart when its settings
// change.
func (m *Manager) connect(ctx context.Context) (*containerd.Client, error) {
	delay := 50 * time.Millisecond
	for {
		c, err := containerd.New(m.Containerd, containerd.WithDefaultNamespace(contract.ContainersNamespace),
			containerd.WithTimeout(5*time.Second))
		if err == nil {
			if _, err = c.Version(ctx); err == nil {
				return c, nil
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("hostctr: containerd at %s: %w", m.Containerd, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// cleanup removes the containers an earlier manager left: they are started again from the
// configuration, with fresh networks and labels.
func (m *Manager) cleanup(ctx context.Context) {
	ctrs, err := m.client.Containers(ctx)
	if err != nil {
		m.printf("containers: list: %v", err)
		return
	}
	for _, c := range ctrs {
		m.remove(ctx, c)
		m.Network.Detach(ctx, c.ID())
	}
}

func (m *Manager) listen() (net.Listener, error) {
	os.Remove(m.Socket)
	ln, err := net.Listen("unix", m.Socket)
	if err != nil {
		return nil, fmt.Errorf("hostctr: %w", err)
	}
	// Only the apiserver (root) talks to the manager.
	if err := os.Chmod(m.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("hostctr: %w", err)
	}
	return ln, nil
}

// reconcile starts, stops and restarts host containers so that those running are the enabled
// ones, each with its current configuration.
func (m *Manager) reconcile(ctx context.Context, cfg contract.ContainersConfig) {
	want := map[string]desired{}
	for i, hc := range cfg.Host {
		if hc.Enabled {
			want[hc.Name] = m.desiredHost(hc, i, cfg.Defaults)
		}
	}
	m.mu.Lock()
	var stop []*instance
	for name, inst := range m.running {
		if d, ok := want[name]; !ok || d.hash != inst.want.hash {
			stop = append(stop, inst)
			delete(m.running, name)
		}
	}
	m.mu.Unlock()
	for _, inst := range stop {
		m.printf("%s: stopping (%s)", inst.want.name, map[bool]string{true: "changed", false: "disabled"}[want[inst.want.name].hash != ""])
		inst.stop()
	}
	m.mu.Lock()
	// Disabled containers leave GET /services; bootstrap entries stay for the boot.
	for name, st := range m.statuses {
		if _, ok := want[name]; !ok && st.Kind == contract.KindHostContainer {
			delete(m.statuses, name)
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		if _, ok := m.running[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		inst := m.newInstance(ctx, want[n])
		m.running[n] = inst
	}
	m.mu.Unlock()
	m.writeState()
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	all := make([]*instance, 0, len(m.running))
	for _, inst := range m.running {
		all = append(all, inst)
	}
	m.running = map[string]*instance{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range all {
		wg.Add(1)
		go func() { defer wg.Done(); inst.stop() }()
	}
	wg.Wait()
}

// setStatus records a container's state and rewrites the state file.
func (m *Manager) setStatus(st contract.ServiceStatus) {
	m.mu.Lock()
	m.statuses[st.ID] = st
	m.mu.Unlock()
	m.writeState()
}

func (m *Manager) writeState() {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	m.mu.Lock()
	var s contract.ContainersState
	for _, st := range m.statuses {
		s.Containers = append(s.Containers, st)
	}
	m.mu.Unlock()
	// Bootstrap containers first, as they run, then host containers, by name.
	slices.SortFunc(s.Containers, func(a, b contract.ServiceStatus) int {
		if a.Kind != b.Kind {
			if a.Kind == contract.KindBootstrapContainer {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	b, err := json.Marshal(s)
	if err == nil {
		err = marker.Set(m.State, b)
	}
	if err != nil {
		m.printf("containers: state: %v", err)
	}
}

// fileWatch reports replacements and writes of one file (the apiserver renders through a
// rename) on C.
type fileWatch struct {
	C  chan struct{}
	fd int
}

func watchFile(path string) (*fileWatch, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hostctr: watch %s: %w", path, err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("hostctr: watch %s: %w", path, err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_DELETE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hostctr: watch %s: %w", path, err)
	}
	w := &fileWatch{C: make(chan struct{}, 1), fd: fd}
	base := filepath.Base(path)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if cString(name) == base {
					select {
					case w.C <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return w, nil
}

func (w *fileWatch) Close() error { return unix.Close(w.fd) }

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
