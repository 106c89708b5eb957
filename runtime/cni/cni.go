// Package cni gives a container its own network namespace on Ballast's container bridge, through
// the CNI plugins in the image: loopback for lo, then bridge (with NAT to the outside) with
// addresses from host-local, and portmap for published ports. The namespace is a bind-mounted
// file the container's spec joins.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// Network attaches containers to the bridge.
type Network struct {
	PluginDir string // contract.CNIPluginDir
	DataDir   string // contract.ContainerCNIData: leases and CNI's cache
	NetNSDir  string // contract.ContainerNetDir
	Bridge    string // contract.ContainerBridge
	Subnet    string // contract.ContainerSubnet
}

// Default is the network of the image's paths.
func Default() Network {
	return Network{PluginDir: contract.CNIPluginDir, DataDir: contract.ContainerCNIData,
		NetNSDir: contract.ContainerNetDir, Bridge: contract.ContainerBridge, Subnet: contract.ContainerSubnet}
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Attachment is a container's namespace and its address.
type Attachment struct {
	NetNS   string // the namespace's path, for the spec
	Address string // the container's address on the bridge, CIDR
}

// ConfList is the network's configuration list, in CNI's format.
func (n Network) ConfList() ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "ballast",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": n.Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": filepath.Join(n.DataDir, "ipam"),
					"ranges": [][]map[string]string{{{"subnet": n.Subnet}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}
	return json.Marshal(conf)
}

func (n Network) config() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{n.PluginDir}, filepath.Join(n.DataDir, "cache"), nil)
}

var loopback = []byte(`{"cniVersion":"1.0.0","name":"ballast-lo","plugins":[{"type":"loopback"}]}`)

// Attach makes a network namespace for the container id and attaches it: lo up, eth0 on the
// bridge. Attach after a failed or forgotten Detach of the same id starts over.
func (n Network) Attach(ctx context.Context, id string, ports []PortMapping) (Attachment, error) {
	if err := os.MkdirAll(n.NetNSDir, 0o700); err != nil {
		return Attachment{}, fmt.Errorf("cni: %w", err)
	}
	n.Detach(ctx, id)
	path := filepath.Join(n.NetNSDir, id)
	if err := newNetNS(path); err != nil {
		return Attachment{}, fmt.Errorf("cni: %s: %w", id, err)
	}
	a, err := n.add(ctx, id, path, ports)
	if err != nil {
		n.Detach(ctx, id)
		return Attachment{}, err
	}
	return a, nil
}

func (n Network) add(ctx context.Context, id, path string, ports []PortMapping) (Attachment, error) {
	cfg := n.config()
	lo, err := libcni.ConfListFromBytes(loopback)
	if err != nil {
		return Attachment{}, fmt.Errorf("cni: loopback: %w", err)
	}
	if _, err := cfg.AddNetworkList(ctx, lo, &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "lo"}); err != nil {
		return Attachment{}, fmt.Errorf("cni: %s: lo: %w", id, err)
	}
	b, err := n.ConfList()
	if err != nil {
		return Attachment{}, fmt.Errorf("cni: %w", err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return Attachment{}, fmt.Errorf("cni: %w", err)
	}
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "eth0"}
	if len(ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	res, err := cfg.AddNetworkList(ctx, list, rt)
	if err != nil {
		return Attachment{}, fmt.Errorf("cni: %s: bridge: %w", id, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return Attachment{}, fmt.Errorf("cni: %s: result: %w", id, err)
	}
	a := Attachment{NetNS: path}
	for _, ip := range r.IPs {
		if ip.Interface != nil && *ip.Interface < len(r.Interfaces) && r.Interfaces[*ip.Interface].Sandbox != "" {
			a.Address = ip.Address.String()
			break
		}
	}
	return a, nil
}

// Detach takes the container id off the bridge, frees its address and removes its namespace. It
// does what it can and reports the rest.
func (n Network) Detach(ctx context.Context, id string) error {
	path := filepath.Join(n.NetNSDir, id)
	var errs []error
	if _, err := os.Stat(path); err == nil {
		cfg := n.config()
		if b, err := n.ConfList(); err == nil {
			if list, err := libcni.ConfListFromBytes(b); err == nil {
				if err := cfg.DelNetworkList(ctx, list, &libcni.RuntimeConf{ContainerID: id, NetNS: path, IfName: "eth0"}); err != nil {
					errs = append(errs, fmt.Errorf("bridge: %w", err))
				}
			}
		}
		if err := removeNetNS(path); err != nil {
			errs = append(errs, fmt.Errorf("namespace: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cni: detach %s: %w", id, err)
	}
	return nil
}

// newNetNS makes a network namespace and keeps it with a bind mount at path. unshare works on the
// calling thread, so the thread is locked for the switch and back, and thrown away if the way
// back fails.
func newNetNS(path string) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("unshare: %w", err)
			return
		}
		merr := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked and dies with this goroutine: it is in the wrong namespace.
			done <- errors.Join(merr, fmt.Errorf("back to the host's network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		if merr != nil {
			merr = fmt.Errorf("bind mount: %w", merr)
		}
		done <- merr
	}()
	return <-done
}

func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
