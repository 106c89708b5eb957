package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// The boot health gate's look at a Kubernetes node: a service whose Health is
// contract.HealthKubernetesNode (the kubelet) is healthy only while its Node is registered and
// Ready, as the API server says to the kubelet's own credentials. The API server is asked from a
// goroutine every nodePoll, so the gate's own look every second never waits on the network and
// the API server sees one request per poll. The asking is done by contract.NodeReadyPath
// (init/k8snode), a program of Kubernetes images only: linked into PID 1, its TLS would double
// the init's size on every image.

// defaultNodePoll is how often the node's readiness is asked for: the kubelet reports its status
// every 10 s, so asking more often would learn nothing.
const defaultNodePoll = 5 * time.Second

// nodeHealth is what the last look at the nodes found.
type nodeHealth struct {
	mu     sync.Mutex
	reason string // why a node is not healthy; "" when every one is
	ready  string // the Ready node last logged, so a change is logged once
}

// nodeServices are the image's services whose health is their Kubernetes node's.
func (i *Init) nodeServices() []string {
	var ids []string
	for _, id := range i.image.Services {
		if p, err := i.findService(id); err == nil && p.Service.Health == contract.HealthKubernetesNode {
			ids = append(ids, id)
		}
	}
	return ids
}

// nodeReason says why the nodes are not healthy; "" when they are, or when the image runs no
// service whose health is a node's.
func (i *Init) nodeReason() string {
	i.nodes.mu.Lock()
	defer i.nodes.mu.Unlock()
	return i.nodes.reason
}

// watchNodes looks at the nodes of ids every nodePoll until ctx ends, the first time at once.
func (i *Init) watchNodes(ctx context.Context, ids []string) {
	t := time.NewTicker(i.nodePoll)
	defer t.Stop()
	for {
		reason, ready := i.checkNodes(ctx, ids)
		if ctx.Err() != nil {
			return
		}
		i.nodes.mu.Lock()
		changed := reason != i.nodes.reason
		logReady := reason == "" && ready != i.nodes.ready
		i.nodes.reason = reason
		if logReady {
			i.nodes.ready = ready
		}
		i.nodes.mu.Unlock()
		switch {
		case logReady:
			i.console.Milestone("boot", "%s", ready)
		case changed && reason != "":
			i.console.Milestone("boot", "waiting: %s", reason)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// checkNodes asks for the node of each service: why one is not healthy ("<service>: <why>"), or
// what is Ready.
func (i *Init) checkNodes(ctx context.Context, ids []string) (reason, ready string) {
	for _, id := range ids {
		node, err := i.nodeCheck(ctx)
		if err != nil {
			return fmt.Sprintf("%s: %v", id, err), ""
		}
		ready = fmt.Sprintf("%s: node %s is Ready", id, node)
	}
	return "", ready
}

// startNodeWatch starts watchNodes when the image runs a service whose health is a node's; the
// gate counts it unhealthy until the first look is done. It returns the function that stops it.
func (i *Init) startNodeWatch(ctx context.Context) func() {
	ids := i.nodeServices()
	if len(ids) == 0 {
		return func() {}
	}
	i.nodes.mu.Lock()
	i.nodes.reason = fmt.Sprintf("%s: its node not looked at yet", ids[0])
	i.nodes.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		i.watchNodes(ctx, ids)
	}()
	return func() {
		cancel()
		<-done
	}
}

// nodeReadyTimeout bounds one run of the node-ready program, whose request has a 5 s bound.
const nodeReadyTimeout = 15 * time.Second

// kubeletNodeCheck is the default nodeCheck: contract.NodeReadyPath under the init's root, which
// prints the Ready node's name, or why it is not Ready and exits 1.
func (i *Init) kubeletNodeCheck(ctx context.Context) (string, error) {
	return i.runNodeReady(ctx)
}

// kubeletPodsCheck is the default podsCheck: the same program with --pods, which says whether
// every pod bound to the node has ended as the API server sees it, or which have not.
func (i *Init) kubeletPodsCheck(ctx context.Context) (string, error) {
	return i.runNodeReady(ctx, "--pods")
}

// runNodeReady runs contract.NodeReadyPath with args and returns its line: the answer when it
// exits 0, an error when it exits 1 (the line), or when it fails otherwise. It is started through
// the init's reaper, the only waiter for children in PID 1.
func (i *Init) runNodeReady(ctx context.Context, args ...string) (string, error) {
	path := i.path(contract.NodeReadyPath)
	argv := append([]string{path}, args...)
	if i.root != "" && i.root != "/" {
		argv = append(argv, "--root", i.root)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return "", fmt.Errorf("%s: %w", contract.NodeReadyPath, err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("%s: %w", contract.NodeReadyPath, err)
	}
	defer r.Close()
	child, err := i.reaper.Start(path, argv, &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/bin:/usr/sbin"},
		Files: []uintptr{null.Fd(), w.Fd(), w.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	w.Close()
	if err != nil {
		return "", fmt.Errorf("%s: %w", contract.NodeReadyPath, err)
	}
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 4096))
		io.Copy(io.Discard, r)
		out <- b
	}()
	timer := time.NewTimer(nodeReadyTimeout)
	defer timer.Stop()
	select {
	case <-child.Done():
	case <-timer.C:
		child.SignalGroup(syscall.SIGKILL)
		<-child.Done()
	case <-ctx.Done():
		child.SignalGroup(syscall.SIGKILL)
		<-child.Done()
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(<-out)), "\n")
	if len(line) > 512 {
		line = line[:512] + "..."
	}
	st := child.Status()
	switch {
	case st.Exited() && st.ExitStatus() == 0 && line != "":
		return line, nil
	case st.Exited() && st.ExitStatus() == 1 && line != "":
		return "", errors.New(line)
	case st.Signaled():
		return "", fmt.Errorf("%s: killed by %v after at most %s (%s)", contract.NodeReadyPath, st.Signal(), nodeReadyTimeout, line)
	default:
		return "", fmt.Errorf("%s: exit status %d (%s)", contract.NodeReadyPath, st.ExitStatus(), line)
	}
}
