package hostctr

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/spec"
)

// desired is one container as the configuration wants it.
type desired struct {
	name     string
	kind     string
	source   string
	userData []byte
	storage  bool // a persistent directory at contract.ContainerStorage
	spec     spec.Container
	hash     string // of everything above: a change restarts the container
}

// userNSBase is the first host id of the user namespaces; container i gets
// [userNSBase+i*userNSSize, +userNSSize).
const (
	userNSBase = 1 << 20
	userNSSize = 1 << 16
)

func (m *Manager) desiredHost(hc contract.HostContainer, slot int, defs contract.ContainerDefaults) desired {
	d := desired{name: hc.Name, kind: contract.KindHostContainer, source: hc.Source, storage: true}
	d.userData, _ = base64.StdEncoding.DecodeString(hc.UserData)
	d.spec = containerSpec(hc.Name, hc.Superpowered, hc.APIAccess, hc.HostNetwork, hc.UserNS || defs.UserNS, slot, defs)
	d.hash = hashOf(d)
	return d
}

func (m *Manager) desiredBootstrap(bc contract.BootstrapContainer, slot int, defs contract.ContainerDefaults) desired {
	d := desired{name: bc.Name, kind: contract.KindBootstrapContainer, source: bc.Source}
	d.userData, _ = base64.StdEncoding.DecodeString(bc.UserData)
	d.spec = containerSpec(bc.Name, bc.Superpowered, false, false, defs.UserNS, slot, defs)
	d.hash = hashOf(d)
	return d
}

func containerSpec(name string, super, api, hostNet, userNS bool, slot int, defs contract.ContainerDefaults) spec.Container {
	c := spec.Container{
		ID: name, Superpowered: super, APIAccess: api, HostNetwork: hostNet || super,
		Capabilities: defs.Capabilities, Memory: defs.Memory, Pids: defs.Pids, CPUWeight: defs.CPUWeight,
	}
	for _, r := range defs.Rlimits {
		c.Rlimits = append(c.Rlimits, specs.POSIXRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
	}
	if userNS && !super {
		c.UserNamespace = &spec.IDRange{From: uint32(userNSBase + slot*userNSSize), Size: userNSSize}
	}
	return c
}

func hashOf(d desired) string {
	b, _ := json.Marshal(struct {
		Kind, Source string
		UserData     []byte
		Spec         spec.Container
	}{d.kind, d.source, d.userData, d.spec})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// instance is a host container kept running: started again after an exit, with back-off, until
// stopped.
type instance struct {
	want   desired
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	task containerd.Task // the running task, for exec
}

func (m *Manager) newInstance(ctx context.Context, d desired) *instance {
	ctx, cancel := context.WithCancel(ctx)
	inst := &instance{want: d, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(inst.done)
		m.keepRunning(ctx, inst)
	}()
	return inst
}

func (inst *instance) stop() {
	inst.cancel()
	<-inst.done
}

func (inst *instance) running() containerd.Task {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.task
}

func (m *Manager) keepRunning(ctx context.Context, inst *instance) {
	d := inst.want
	st := contract.ServiceStatus{ID: d.name, Kind: d.kind, State: "waiting"}
	m.setStatus(st)
	var delay time.Duration
	for {
		started := time.Now()
		code, err := m.runOnce(ctx, d, func(t containerd.Task, label string) {
			inst.mu.Lock()
			inst.task = t
			inst.mu.Unlock()
			st.State, st.Pid, st.Error, st.Label = "running", int(t.Pid()), "", label
			m.setStatus(st)
		})
		inst.mu.Lock()
		inst.task = nil
		inst.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		st.Pid, st.Label = 0, ""
		if err != nil {
			st.Error = err.Error()
			m.printf("%s: %v", d.name, err)
		} else {
			st.LastExit, st.Error = exitText(code), ""
			m.printf("%s: %s", d.name, st.LastExit)
		}
		delay = m.Backoff.Next(delay, time.Since(started))
		st.State = "backoff"
		m.setStatus(st)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		st.Restarts++
	}
}

func exitText(code uint32) string {
	if code > 128 && code < 128+65 {
		return "signal: " + syscall.Signal(code-128).String()
	}
	return fmt.Sprintf("exit status %d", code)
}

// runOnce gets the image, creates the container and its task, runs it until it exits or ctx is
// done (then it is stopped), and removes it. started is called once the task runs.
func (m *Manager) runOnce(ctx context.Context, d desired, started func(containerd.Task, string)) (uint32, error) {
	img, err := m.getter.Get(ctx, d.source)
	if err != nil {
		return 0, err
	}
	// Cleanup runs on a context of its own: ctx may be done (the container is being stopped).
	clean := context.WithoutCancel(ctx)
	level, err := m.mcs.Allocate()
	if err != nil {
		return 0, fmt.Errorf("selinux level: %w", err)
	}
	defer m.mcs.Release(level)
	c := d.spec
	c.Level, c.NoLabels = level, m.NoLabels
	var extra []oci.SpecOpts
	// The rootfs needs nothing here: containerd's client adds the spec's mount label to the
	// snapshot's mounts as context="..." when it creates the task.
	fileLabel := ""
	if !c.NoLabels {
		fileLabel = spec.FileLabel(c)
	}
	mounts, err := m.prepareMounts(d, fileLabel)
	if err != nil {
		return 0, err
	}
	extra = append(extra, oci.WithMounts(mounts), oci.WithHostname(d.name))
	if !c.HostNetwork {
		att, err := m.Network.Attach(ctx, d.name, nil)
		if err != nil {
			return 0, err
		}
		defer m.Network.Detach(clean, d.name)
		extra = append(extra, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: att.NetNS}))
		m.printf("%s: network %s", d.name, att.Address)
	}
	sopts, err := spec.Opts(c)
	if err != nil {
		return 0, err
	}
	opts := append([]oci.SpecOpts{oci.WithImageConfig(img)}, sopts...)
	opts = append(opts, extra...)
	snap := containerd.WithNewSnapshot(d.name, img)
	if u := c.UserNamespace; u != nil {
		snap = containerd.WithRemappedSnapshot(d.name, img, u.From, u.From)
	}
	created := time.Now()
	ctr, err := m.client.NewContainer(ctx, d.name,
		containerd.WithImage(img),
		containerd.WithSnapshotter("overlayfs"),
		snap,
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(map[string]string{"os.ballast.kind": d.kind, "os.ballast.hash": d.hash}),
	)
	if err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	defer m.remove(clean, ctr)
	out := newLineWriter(m.Logs, d.name)
	defer out.Flush()
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return 0, fmt.Errorf("task: %w", err)
	}
	exitC, err := task.Wait(clean)
	if err != nil {
		return 0, fmt.Errorf("task: wait: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		return 0, fmt.Errorf("task: start: %w", err)
	}
	// The start latency, create to running, as the benchmarks read it.
	m.printf("%s: running pid %d, started in %v", d.name, task.Pid(), time.Since(created).Round(time.Microsecond))
	if started != nil {
		started(task, spec.ProcessLabel(c))
	}
	for {
		select {
		case st := <-exitC:
			if st.Error() != nil && !errors.Is(st.Error(), context.Canceled) {
				// The wait broke, not the task (containerd restarted): wait again.
				if exitC, err = task.Wait(clean); err == nil {
					continue
				}
				return 0, fmt.Errorf("task: wait: %w", st.Error())
			}
			task.Delete(clean)
			return st.ExitCode(), nil
		case <-ctx.Done():
			m.kill(clean, task, exitC)
			return 0, ctx.Err()
		}
	}
}

// kill stops a task: SIGTERM, SIGKILL after StopTimeout.
func (m *Manager) kill(ctx context.Context, task containerd.Task, exitC <-chan containerd.ExitStatus) {
	task.Kill(ctx, syscall.SIGTERM)
	select {
	case <-exitC:
	case <-time.After(m.StopTimeout):
		task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
		select {
		case <-exitC:
		case <-time.After(5 * time.Second):
		}
	}
	task.Delete(ctx, containerd.WithProcessKill)
}

// remove deletes a container, its task and its snapshot.
func (m *Manager) remove(ctx context.Context, c containerd.Container) {
	if t, err := c.Task(ctx, nil); err == nil {
		t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
		t.Delete(ctx, containerd.WithProcessKill)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		m.printf("%s: remove: %v", c.ID(), err)
	}
}

// prepareMounts writes the user data file and makes the storage directory. With a label, both
// get it (the whole storage tree): the container's level is new at every run, and under the
// policy it reaches only files at its own level.
func (m *Manager) prepareMounts(d desired, label string) ([]specs.Mount, error) {
	var mounts []specs.Mount
	dir := filepath.Join(m.RunDir, d.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	ud := filepath.Join(dir, "user-data")
	// Readable by the container's root when it is someone else on the host (a user namespace);
	// the directory keeps everyone else on the host out.
	if err := os.WriteFile(ud, d.userData, 0o644); err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	if err := os.Chmod(ud, 0o644); err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	if label != "" {
		if err := m.Relabel.File(ud, label); err != nil {
			return nil, fmt.Errorf("user data: %w", err)
		}
	}
	mounts = append(mounts, specs.Mount{Destination: contract.ContainerUserData, Type: "bind", Source: ud,
		Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	if m.ResolvConf != "" {
		if _, err := os.Stat(m.ResolvConf); err == nil {
			mounts = append(mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: m.ResolvConf,
				Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
		}
	}
	if d.storage {
		st := filepath.Join(m.StorageDir, d.name)
		if err := os.MkdirAll(st, 0o700); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		uid := 0
		if u := d.spec.UserNamespace; u != nil {
			uid = int(u.From)
		}
		if err := os.Lchown(st, uid, uid); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		if label != "" {
			if err := m.Relabel.Tree(st, label); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		}
		mounts = append(mounts, specs.Mount{Destination: contract.ContainerStorage, Type: "bind", Source: st,
			Options: []string{"rbind", "rw", "nosuid", "nodev"}})
	}
	return mounts, nil
}
