// Package k8scluster runs a Kubernetes control plane for tests: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler from the pinned binaries, with a PKI made per
// Start, a bootstrap token nodes join with (TLS bootstrapping, auto-approved client
// certificates), and the RBAC bindings kubeadm makes for that.
//
// Networking: the control plane runs in a network namespace of its own (nettest.Netns), on
// that namespace's loopback at the components' usual ports. The test reaches the apiserver
// through a forwarder on the test's loopback (Cluster.APIServerURL, Cluster.HostAddr), which is
// also what a QEMU guestfwd points at. The apiserver reaches a node's kubelet at the node's
// InternalIP, which under QEMU user networking (10.0.2.15) is not routable from the host:
// ReachNode puts that address on the namespace's loopback and forwards its port to the host
// address QEMU's hostfwd listens on. Nothing outside the namespace changes but the two
// loopback listeners of the test, so tests may run side by side.
package k8scluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ballast-os/ballast/tests/nettest"
	"github.com/ballast-os/ballast/tests/testutil"
)

// Binaries are the paths of the control plane's programs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler string
}

// Options configures Start.
type Options struct {
	Binaries Binaries
	// Hosts are further names or IP addresses clients dial the apiserver at, put into its
	// serving certificate: a QEMU guestfwd address such as 10.0.2.100.
	Hosts []string
	// AdvertiseAddress is the apiserver's address in the "kubernetes" service's endpoints. The
	// default is the first IP address in Hosts, else 192.0.2.1 (TEST-NET-1).
	AdvertiseAddress string
	// ServiceCIDR is the service IP range (default 10.96.0.0/12); ClusterCIDR the pod range the
	// controller-manager cuts nodes' podCIDRs from (default 10.244.0.0/16).
	ServiceCIDR, ClusterCIDR string
	// ApproveKubeletServing approves the CSRs kubelets make for their serving certificates
	// (serverTLSBootstrap), which no built-in controller approves: a cluster's own approver's job.
	ApproveKubeletServing bool
	// ReadyTimeout bounds the wait for /readyz and the default service account (default 2 min).
	ReadyTimeout time.Duration
}

// Ports of the components on the namespace's loopback.
const (
	APIServerPort = 6443
	etcdPort      = 2379
	etcdPeerPort  = 2380
)

// Cluster is a running control plane, stopped when the test ends.
type Cluster struct {
	// APIServerURL is https://HostAddr: the apiserver as the test reaches it.
	APIServerURL string
	// HostAddr is 127.0.0.1:port on the test's loopback, forwarded to the apiserver: what a
	// guestfwd to the apiserver connects to.
	HostAddr string
	// CACert is the cluster CA (PEM): the kubelet's cluster-certificate.
	CACert []byte
	// BootstrapToken is a token in GroupBootstrappers that a kubelet TLS-bootstraps with.
	BootstrapToken string
	PKI            *PKI
	// Dir holds the PKI, kubeconfigs, etcd's data and each component's log (<name>.log).
	Dir string

	ns     *nettest.Netns
	procs  []*proc
	cfg    *rest.Config
	client kubernetes.Interface
}

type proc struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error
}

// Start runs a control plane until the test ends and returns once /readyz passes, the
// bootstrap RBAC exists and the default service account does (pods need it). It needs root
// (the network namespace).
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	testutil.Root(t, "the control plane runs in a network namespace")
	for name, p := range map[string]string{"etcd": o.Binaries.Etcd, "kube-apiserver": o.Binaries.APIServer,
		"kube-controller-manager": o.Binaries.ControllerManager, "kube-scheduler": o.Binaries.Scheduler} {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			t.Fatalf("k8scluster: %s binary %q: not an executable (%v)", name, p, err)
		}
	}
	o = o.defaults()
	_, svcNet, err := net.ParseCIDR(o.ServiceCIDR)
	if err != nil {
		t.Fatalf("k8scluster: ServiceCIDR %q: %v", o.ServiceCIDR, err)
	}
	serviceIP := append(net.IP(nil), svcNet.IP.To4()...)
	if serviceIP == nil {
		t.Fatalf("k8scluster: ServiceCIDR %q: IPv4 only", o.ServiceCIDR)
	}
	serviceIP[3]++
	hosts := append([]string{o.AdvertiseAddress}, o.Hosts...)
	pki, err := NewPKI(serviceIP, hosts, time.Now())
	if err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	token, err := NewBootstrapToken()
	if err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	c := &Cluster{CACert: pki.CA.CertPEM, BootstrapToken: token, PKI: pki, Dir: t.TempDir()}
	files, err := c.writeConfig(o)
	if err != nil {
		t.Fatalf("k8scluster: %v", err)
	}

	c.ns = nettest.NewNetns(t)
	if err := c.addLoopbackAddr(o.AdvertiseAddress); err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	c.forwardFromHost(t)
	c.cfg = &rest.Config{
		Host: c.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.CA.CertPEM, CertData: pki.Admin.CertPEM, KeyData: pki.Admin.KeyPEM,
		},
		QPS: 50, Burst: 100,
		Timeout: 30 * time.Second,
	}
	if c.client, err = kubernetes.NewForConfig(c.cfg); err != nil {
		t.Fatalf("k8scluster: client: %v", err)
	}
	t.Cleanup(func() { c.stop(t) })

	ctx, cancel := context.WithTimeout(t.Context(), o.ReadyTimeout)
	defer cancel()
	c.run(t, "etcd", o.Binaries.Etcd, etcdArgs(c.Dir))
	c.run(t, "kube-apiserver", o.Binaries.APIServer, apiserverArgs(files, o, token))
	if err := c.waitReady(ctx); err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	for _, b := range BootstrapRBAC() {
		if _, err := c.client.RbacV1().ClusterRoleBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
			t.Fatalf("k8scluster: ClusterRoleBinding %s: %v", b.Name, err)
		}
	}
	c.run(t, "kube-controller-manager", o.Binaries.ControllerManager, controllerManagerArgs(files, o))
	c.run(t, "kube-scheduler", o.Binaries.Scheduler, schedulerArgs(files))
	if err := c.waitDefaultServiceAccount(ctx); err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	if o.ApproveKubeletServing {
		go approveKubeletServing(t.Context(), c.client, t.Logf)
	}
	return c
}

func (o Options) defaults() Options {
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = "10.96.0.0/12"
	}
	if o.ClusterCIDR == "" {
		o.ClusterCIDR = "10.244.0.0/16"
	}
	if o.AdvertiseAddress == "" {
		o.AdvertiseAddress = "192.0.2.1"
		for _, h := range o.Hosts {
			if ip := net.ParseIP(h); ip != nil && ip.To4() != nil {
				o.AdvertiseAddress = h
				break
			}
		}
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 2 * time.Minute
	}
	return o
}

// configFiles are the paths the components' flags name.
type configFiles struct {
	Files
	tokens, cmKubeconfig, schedKubeconfig string
}

func (c *Cluster) writeConfig(o Options) (configFiles, error) {
	pkiDir := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return configFiles{}, err
	}
	f, err := c.PKI.WriteFiles(pkiDir)
	if err != nil {
		return configFiles{}, err
	}
	cf := configFiles{Files: f,
		tokens:          filepath.Join(c.Dir, "tokens.csv"),
		cmKubeconfig:    filepath.Join(c.Dir, "controller-manager.kubeconfig"),
		schedKubeconfig: filepath.Join(c.Dir, "scheduler.kubeconfig"),
	}
	tokens, err := TokenFile(c.BootstrapToken)
	if err != nil {
		return configFiles{}, err
	}
	inside := fmt.Sprintf("https://127.0.0.1:%d", APIServerPort)
	cm, err := Kubeconfig(inside, c.PKI.CA.CertPEM, c.PKI.ControllerManager)
	if err != nil {
		return configFiles{}, err
	}
	sched, err := Kubeconfig(inside, c.PKI.CA.CertPEM, c.PKI.Scheduler)
	if err != nil {
		return configFiles{}, err
	}
	for path, b := range map[string][]byte{cf.tokens: tokens, cf.cmKubeconfig: cm, cf.schedKubeconfig: sched} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return configFiles{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return cf, nil
}

func etcdArgs(dir string) []string {
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort)
	return []string{
		"--name=ballast-test", "--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=ballast-test=" + peer,
		// The cluster lives as long as one test: durability buys nothing and fsync costs seconds
		// on a busy disk.
		"--unsafe-no-fsync", "--log-level=warn",
	}
}

func apiserverArgs(f configFiles, o Options, token string) []string {
	return []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		"--bind-address=0.0.0.0", fmt.Sprintf("--secure-port=%d", APIServerPort),
		"--advertise-address=" + o.AdvertiseAddress,
		"--tls-cert-file=" + f.APIServerCert, "--tls-private-key-file=" + f.APIServerKey,
		"--client-ca-file=" + f.CACert,
		"--token-auth-file=" + f.tokens,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		// The node, not the apiserver, must refuse privileged pods: Ballast's CRI policy is
		// what the tests check.
		"--allow-privileged=true",
		"--service-cluster-ip-range=" + o.ServiceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f.SAPub, "--service-account-signing-key-file=" + f.SAKey,
		"--kubelet-client-certificate=" + f.KubeletClientCert, "--kubelet-client-key=" + f.KubeletKey,
		// A node's Hostname address resolves nowhere here; its InternalIP is what ReachNode routes.
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false",
	}
}

func controllerManagerArgs(f configFiles, o Options) []string {
	return []string{
		"--kubeconfig=" + f.cmKubeconfig,
		"--secure-port=0", "--leader-elect=false", "--profiling=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + f.SAKey, "--root-ca-file=" + f.CACert,
		// csrsigning signs the kubelets' client (and serving) certificates with the cluster CA.
		"--cluster-signing-cert-file=" + f.CACert, "--cluster-signing-key-file=" + f.CAKey,
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--allocate-node-cidrs=true", "--cluster-cidr=" + o.ClusterCIDR,
		"--service-cluster-ip-range=" + o.ServiceCIDR,
	}
}

func schedulerArgs(f configFiles) []string {
	return []string{"--kubeconfig=" + f.schedKubeconfig, "--secure-port=0", "--leader-elect=false", "--profiling=false"}
}

// run starts a component inside the namespace (a process forked from the namespace's thread
// starts there), in a process group of its own that stop kills.
func (c *Cluster) run(t testing.TB, name, bin string, args []string) {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(c.Dir, name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = c.Dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	// Pdeathsig fires when the namespace's thread ends, which is when the test's cleanup closes
	// the namespace, or when the test binary dies.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = c.ns.Do(p.cmd.Start)
	logf.Close()
	if err != nil {
		t.Fatalf("k8scluster: start %s (%s): %v", name, bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	c.procs = append(c.procs, p)
}

// stop kills the components, newest first, and shows their logs' ends if the test failed.
func (c *Cluster) stop(t testing.TB) {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		select {
		case <-p.exited:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				t.Logf("k8scluster: %s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
			}
		}
	}
	if t.Failed() {
		for _, p := range c.procs {
			t.Logf("k8scluster: %s's log (%s), last lines:\n%s", p.name, p.log, tail(p.log, 40))
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// exitedEarly names a component that is no longer running, with its log's end.
func (c *Cluster) exitedEarly() error {
	for _, p := range c.procs {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(p.log, 30))
		default:
		}
	}
	return nil
}

func (c *Cluster) waitReady(ctx context.Context) error {
	var last error
	for {
		if err := c.exitedEarly(); err != nil {
			return err
		}
		body, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = fmt.Errorf("%v %s", err, body)
		select {
		case <-ctx.Done():
			return fmt.Errorf("apiserver /readyz: %w (last: %v)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitDefaultServiceAccount waits for the serviceaccount controller to make "default" in
// namespace default: the apiserver refuses pods there until it exists.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	for {
		if err := c.exitedEarly(); err != nil {
			return err
		}
		_, err := c.client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			return fmt.Errorf("service account default/default: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service account default/default (the controller-manager's): %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Client is a clientset with the test's identity, a member of system:masters.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// RESTConfig is the admin's rest.Config (a copy), for other clients.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.cfg) }

// ClientFor is a clientset authenticated as user in group (may be empty) with a certificate
// from the cluster CA, to check what the authorisers let such a user do.
func (c *Cluster) ClientFor(user, group string) (kubernetes.Interface, error) {
	kp, err := ClientCert(c.PKI.CA, user, group, time.Now())
	if err != nil {
		return nil, err
	}
	cfg := rest.AnonymousClientConfig(c.cfg)
	cfg.TLSClientConfig.CertData, cfg.TLSClientConfig.KeyData = kp.CertPEM, kp.KeyPEM
	return kubernetes.NewForConfig(cfg)
}

// BootstrapConfig is a rest.Config that authenticates with the bootstrap token, as a kubelet
// starts.
func (c *Cluster) BootstrapConfig() *rest.Config {
	cfg := rest.AnonymousClientConfig(c.cfg)
	cfg.BearerToken = c.BootstrapToken
	return cfg
}

// Log returns a component's log so far ("etcd", "kube-apiserver", "kube-controller-manager",
// "kube-scheduler").
func (c *Cluster) Log(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	return string(b), err
}

func (c *Cluster) addLoopbackAddr(ip string) error {
	lo, err := c.ns.NL.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("namespace loopback: %w", err)
	}
	a, err := netlink.ParseAddr(ip + "/32")
	if err != nil {
		return fmt.Errorf("address %q: %w", ip, err)
	}
	if err := c.ns.NL.AddrAdd(lo, a); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("address %s on the namespace's loopback: %w", ip, err)
	}
	return nil
}

// forwardFromHost listens on the test's loopback and forwards to the apiserver in the namespace.
func (c *Cluster) forwardFromHost(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	target := fmt.Sprintf("127.0.0.1:%d", APIServerPort)
	f := forward(ln, func() (conn net.Conn, err error) {
		err = c.ns.Do(func() error {
			conn, err = net.DialTimeout("tcp", target, 5*time.Second)
			return err
		})
		return conn, err
	})
	t.Cleanup(f.Close)
	c.HostAddr = ln.Addr().String()
	c.APIServerURL = "https://" + c.HostAddr
}

// ReachNode lets the control plane reach ip:port (a node's InternalIP and the kubelet's port,
// 10250) at hostAddr on the test's side: ip goes on the namespace's loopback, and connections to
// it are forwarded to hostAddr, e.g. a QEMU hostfwd's listener.
func (c *Cluster) ReachNode(t testing.TB, ip string, port int, hostAddr string) {
	t.Helper()
	if err := c.addLoopbackAddr(ip); err != nil {
		t.Fatalf("k8scluster: %v", err)
	}
	var ln net.Listener
	err := c.ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
		return err
	})
	if err != nil {
		t.Fatalf("k8scluster: listen at %s:%d in the namespace: %v", ip, port, err)
	}
	f := forward(ln, func() (net.Conn, error) { return net.DialTimeout("tcp", hostAddr, 5*time.Second) })
	t.Cleanup(f.Close)
}
