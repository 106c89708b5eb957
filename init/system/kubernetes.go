package system

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/logind"
	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// What a Kubernetes node (an image with contract.KubeletPath) needs of the system init: the
// kubelet's state directory as a shared mount, the directories CRI expects, the cgroup
// controllers the kubelet's cgroupfs driver uses, and logind's part in the shutdown (the
// kubelet's graceful node shutdown, init/logind). Other images get none of it.

// kubeletControllers are the cgroup v2 controllers the kubelet's cgroupfs driver expects enabled
// in the root cgroup for its pod cgroups; those the kernel lacks (hugetlb without huge pages) are
// left out.
func kubeletControllers() []string {
	return []string{"cpu", "memory", "pids", "io", "cpuset", "hugetlb"}
}

// isKubernetesNode says whether the image runs the kubelet.
func (i *Init) isKubernetesNode() bool {
	_, err := os.Stat(i.path(contract.KubeletPath))
	return err == nil
}

// prepareKubernetes readies the machine for the kubelet and CRI, after the system mounts and
// before the services. It returns every failure; one does not stop the other steps.
func (i *Init) prepareKubernetes() error {
	if !i.isKubernetesNode() {
		return nil
	}
	var errs []error
	// /run/netns: pod network namespaces. /var/run: where containerd's CRI and the CNI plugins
	// look for /run (its netns directory among it); /var is on the data partition, so the link
	// is made once and kept.
	if err := os.MkdirAll(i.path(contract.NetnsDir), 0o755); err != nil {
		errs = append(errs, fmt.Errorf("mkdir: %w", err))
	}
	if err := i.varRunLink(); err != nil {
		errs = append(errs, err)
	}
	// Plugins a cluster's CNI daemonset installs through /opt/cni/bin, a link to /local.
	if err := os.MkdirAll(i.path(contract.CNIExtraPluginDirOnData), 0o755); err != nil {
		errs = append(errs, fmt.Errorf("mkdir: %w", err))
	}
	if err := i.machineID(); err != nil {
		errs = append(errs, err)
	}
	if err := i.sharedKubeletRoot(); err != nil {
		errs = append(errs, err)
	}
	if err := i.enableControllers(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// machineID writes contract.MachineIDPath from contract.MachineIDState, drawing the ID (128
// random bits in hex, as systemd writes them) on the first boot: the node keeps its machine ID
// across reboots and updates, and a reinstalled one gets a new one.
func (i *Init) machineID() error {
	state := i.path(contract.MachineIDState)
	b, err := os.ReadFile(state)
	id := strings.TrimSpace(string(b))
	if err != nil || !validMachineID(id) {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return fmt.Errorf("machine id: %w", err)
		}
		id = hex.EncodeToString(raw[:])
		if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
			return fmt.Errorf("machine id: %w", err)
		}
		if err := writeFileSync(state, []byte(id+"\n"), 0o444); err != nil {
			return fmt.Errorf("machine id: %w", err)
		}
	}
	if err := os.WriteFile(i.path(contract.MachineIDPath), []byte(id+"\n"), 0o444); err != nil {
		return fmt.Errorf("machine id: %w", err)
	}
	return nil
}

// validMachineID is 32 lowercase hex digits, not all zero.
func validMachineID(id string) bool {
	if len(id) != 32 || strings.Trim(id, "0") == "" {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// writeFileSync writes a file through a temporary one and renames it, synced, so a power cut
// leaves the old ID or the new one, never half of one.
func writeFileSync(name string, data []byte, mode os.FileMode) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// varRunLink makes /var/run a link to /run when there is nothing there.
func (i *Init) varRunLink() error {
	link := i.path(contract.VarDir + "/run")
	if target, err := os.Readlink(link); err == nil {
		if target == "../run" || target == "/run" {
			return nil
		}
		return fmt.Errorf("%s/run links to %s, not /run", contract.VarDir, target)
	}
	if _, err := os.Lstat(link); err == nil {
		return fmt.Errorf("%s/run is not a link to /run", contract.VarDir)
	}
	if err := os.Symlink("../run", link); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	return nil
}

// sharedKubeletRoot makes contract.KubeletRoot a mount of its own with shared propagation
// (rshared): volumes the kubelet and CSI drivers mount below it must reach the containers that
// ask for Bidirectional or HostToContainer propagation.
func (i *Init) sharedKubeletRoot() error {
	dir := contract.KubeletRoot
	if err := os.MkdirAll(i.path(dir), 0o750); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	mounts, err := mountinfo.ReadFile(i.path(mountinfo.Self))
	if err != nil {
		return err
	}
	if _, ok := mountinfo.At(mounts, dir); !ok {
		if err := i.kernel.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dir, err)
		}
	}
	if err := i.kernel.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s rshared: %w", dir, err)
	}
	return nil
}

// enableControllers enables kubeletControllers in the root cgroup's subtree.
func (i *Init) enableControllers() error {
	root := i.path("/sys/fs/cgroup")
	b, err := os.ReadFile(root + "/cgroup.controllers")
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	have := strings.Fields(string(b))
	var add []string
	for _, c := range kubeletControllers() {
		for _, h := range have {
			if h == c {
				add = append(add, "+"+c)
				break
			}
		}
	}
	if len(add) == 0 {
		return fmt.Errorf("cgroups: none of %s available", strings.Join(kubeletControllers(), ","))
	}
	// One write: the kernel enables all or none, and a failure names the whole set.
	if err := os.WriteFile(root+"/cgroup.subtree_control", []byte(strings.Join(add, " ")), 0o644); err != nil {
		return fmt.Errorf("cgroups: enable %s: %w", strings.Join(add, " "), err)
	}
	return nil
}

// startLogind serves the system bus for the kubelet's graceful node shutdown, before the
// services start, so the kubelet finds it at its first look.
func (i *Init) startLogind(ctx context.Context) {
	if !i.isKubernetesNode() {
		return
	}
	srv, err := logind.Listen(logind.Options{
		Socket:          i.path(contract.DBusSystemSocket),
		InhibitDelayMax: i.inhibitDelayMax,
		Logf: func(format string, args ...any) {
			i.console.Milestone("logind", "%s", strings.TrimPrefix(fmt.Sprintf(format, args...), "logind: "))
		},
	})
	if err != nil {
		i.console.Errorf("%v; the kubelet's graceful node shutdown is off", err)
		return
	}
	i.logind = srv
	go func() {
		if err := srv.Serve(); err != nil {
			i.console.Errorf("%v", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
}

// prepareForShutdown tells the kubelet the machine goes down and waits for its delay lock (the
// pods stopped, critical ones last), at most logind's InhibitDelayMax.
func (i *Init) prepareForShutdown() {
	if i.logind == nil {
		return
	}
	if held := i.logind.Inhibitors(); len(held) > 0 {
		i.console.Milestone("shutdown", "waiting up to %v for the delay locks of %s", i.logind.InhibitDelayMax(), holders(held))
	}
	w := i.logind.PrepareForShutdown(context.Background())
	switch {
	case len(w.Held) == 0:
	case len(w.Left) == 0:
		i.console.Milestone("shutdown", "delay locks released after %v", w.Waited.Round(time.Millisecond))
		i.waitPodsEnded()
	default:
		i.console.Errorf("shutdown: %s still hold delay locks after %v; going on", holders(w.Left), w.Waited.Round(time.Millisecond))
	}
}

// defaultPodSettleMax bounds the shutdown's wait for the API server to have the node's pods
// ended. With the delay locks' wait, the services' stop and the kill, a shutdown stays within
// the health gate's rebootGrace.
const defaultPodSettleMax = 20 * time.Second

// defaultPodSettlePoll is how often the shutdown asks whether the node's pods have ended.
const defaultPodSettlePoll = time.Second

// waitPodsEnded waits, at most podSettleMax, until the API server has every pod of the node as
// ended. The kubelet releases its delay lock once it has stopped the pods, but reports a pod's
// end (Failed: "terminated in response to imminent node shutdown") only after the pod's cleanup;
// stopped at once, as systemd would, it takes that report down with it on a loaded machine, and
// the cluster sees the pod Running until the node is back.
func (i *Init) waitPodsEnded() {
	if i.podsCheck == nil {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), i.podSettleMax)
	defer cancel()
	t := time.NewTicker(i.podSettlePoll)
	defer t.Stop()
	for {
		line, err := i.podsCheck(ctx)
		if err == nil {
			i.console.Milestone("shutdown", "%s (after %v)", line, time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			i.console.Errorf("shutdown: %v, %v after the delay locks; going on", err, i.podSettleMax)
			return
		case <-t.C:
		}
	}
}

// holders names the holders of delay locks: "kubelet (pid 812)".
func holders(in []logind.Inhibitor) string {
	var s []string
	for _, h := range in {
		s = append(s, fmt.Sprintf("%s (pid %d)", h.Who, h.PID))
	}
	return strings.Join(s, ", ")
}
