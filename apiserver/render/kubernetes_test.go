package render

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/containernetworking/cni/libcni"
	"go.yaml.in/yaml/v2"

	"github.com/ballast-os/ballast/apiserver/initclient/initclienttest"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

func mergePatch(t *testing.T, s settings.Settings, patch string) settings.Settings {
	t.Helper()
	return settings.Merge(s, decode(t, patch))
}

// clusterCA is a CA certificate's PEM (testCA decoded): what cluster-certificate carries,
// base64-encoded.
func clusterCA(t *testing.T) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(testCA)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// joinedSettings is a node configured to join a cluster, every key set.
func joinedSettings(t *testing.T) string {
	t.Helper()
	return `{"kubernetes":{"api-server":"https://10.0.2.100:6443","cluster-name":"test","cluster-certificate":"` +
		testCA + `","bootstrap-token":"abcdef.0123456789abcdef",` +
		`"cluster-dns-ip":"10.96.0.10","cluster-domain":"k.local","node-labels":{"example.com/role":"edge","tier":""},` +
		`"node-taints":{"dedicated":["gpu:NoSchedule",":NoExecute"]},"max-pods":42,"pod-pids-limit":512,"eviction-hard":{"memory.available":"100Mi","nodefs.available":"10%"},` +
		`"kube-reserved":{"cpu":"100m","memory":"256Mi"},"system-reserved":{"ephemeral-storage":"1Gi"},` +
		`"provider-id":"aws:///us-east-1a/i-0123","cloud-provider":"external","hostname-override":"node-a","node-ip":"10.0.2.15",` +
		`"shutdown-grace-period":"45s","shutdown-grace-period-for-critical-pods":"15s"}}`
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s is not YAML: %v\n%s", path, err, b)
	}
	return m
}

// get walks a decoded YAML or JSON tree by keys and list indexes.
func get(t *testing.T, tree any, path ...any) any {
	t.Helper()
	v := tree
	for _, p := range path {
		switch k := p.(type) {
		case string:
			switch m := v.(type) {
			case map[string]any:
				v = m[k]
			case map[any]any:
				v = m[k]
			default:
				t.Fatalf("%v: %T is not a table", path, v)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: %v is not a list with item %d", path, v, k)
			}
			v = l[k]
		}
	}
	return v
}

func env(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: line %q is not KEY=VALUE", path, l)
		}
		out[k] = v
	}
	return out
}

// The node's files exist only where the image has a kubelet; a plain image's containerd
// configuration stays what it was.
func TestKubeletFilesOnlyWithKubelet(t *testing.T) {
	s := decode(t, joinedSettings(t))
	plain := &Renderer{EtcDir: t.TempDir()}
	if _, err := plain.Apply(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{contract.KubeletConfigPath, contract.KubeletEnv, contract.KubeletBootstrapKubeconfig, contract.KubeletClusterCA, CNIConfigFile, RunscConfig, CRIRegistryDir} {
		if _, err := os.Stat(plain.hostPath(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in an image without a kubelet: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(plain.hostPath(contract.ContainerdConfig)); string(b) != containerdConfig(3) {
		t.Errorf("containerd's configuration without a kubelet:\n%s", b)
	}
}

func TestKubeletConfiguration(t *testing.T) {
	r := &Renderer{EtcDir: t.TempDir(), Node: Node{Kubelet: true}}
	res, err := r.Apply(context.Background(), decode(t, joinedSettings(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{contract.KubeletConfigPath, contract.KubeletEnv, contract.KubeletBootstrapKubeconfig, contract.KubeletClusterCA, CNIConfigFile, contract.ContainerdConfig} {
		if !slices.Contains(res.Files, p) {
			t.Errorf("Apply at start wrote %v, not %s", res.Files, p)
		}
	}
	c := readYAML(t, r.hostPath(contract.KubeletConfigPath))
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"kind"}, "KubeletConfiguration"},
		{[]any{"apiVersion"}, "kubelet.config.k8s.io/v1beta1"},
		{[]any{"enableServer"}, true},
		{[]any{"readOnlyPort"}, 0},
		{[]any{"authentication", "anonymous", "enabled"}, false},
		{[]any{"authentication", "webhook", "enabled"}, true},
		{[]any{"authentication", "x509", "clientCAFile"}, contract.KubeletClusterCA},
		{[]any{"authorization", "mode"}, "Webhook"},
		{[]any{"protectKernelDefaults"}, true},
		{[]any{"seccompDefault"}, true},
		{[]any{"serializeImagePulls"}, true},
		{[]any{"cgroupDriver"}, "cgroupfs"},
		{[]any{"containerRuntimeEndpoint"}, "unix://" + contract.ContainerdSocket},
		{[]any{"rotateCertificates"}, true},
		{[]any{"serverTLSBootstrap"}, false},
		{[]any{"tlsMinVersion"}, "VersionTLS12"},
		{[]any{"staticPodPath"}, nil},
		{[]any{"healthzBindAddress"}, "127.0.0.1"},
		{[]any{"healthzPort"}, 10248},
		{[]any{"clusterDomain"}, "k.local"},
		{[]any{"clusterDNS", 0}, "10.96.0.10"},
		{[]any{"maxPods"}, 42},
		{[]any{"podPidsLimit"}, 512},
		{[]any{"evictionHard", "memory.available"}, "100Mi"},
		{[]any{"evictionHard", "nodefs.available"}, "10%"},
		{[]any{"kubeReserved", "cpu"}, "100m"},
		{[]any{"kubeReserved", "memory"}, "256Mi"},
		{[]any{"systemReserved", "ephemeral-storage"}, "1Gi"},
		{[]any{"registerWithTaints", 0, "key"}, "dedicated"},
		{[]any{"registerWithTaints", 0, "value"}, "gpu"},
		{[]any{"registerWithTaints", 0, "effect"}, "NoSchedule"},
		{[]any{"registerWithTaints", 1, "effect"}, "NoExecute"},
		{[]any{"registerWithTaints", 1, "value"}, nil},
		{[]any{"providerID"}, "aws:///us-east-1a/i-0123"},
		{[]any{"shutdownGracePeriod"}, "45s"},
		{[]any{"shutdownGracePeriodCriticalPods"}, "15s"},
		{[]any{"volumePluginDir"}, contract.KubeletRoot + "/plugins/volume/exec"},
	} {
		if got := get(t, c, tc.path...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v = %#v, want %#v", tc.path, got, tc.want)
		}
	}
	for _, suite := range get(t, c, "tlsCipherSuites").([]any) {
		if s := suite.(string); !strings.HasPrefix(s, "TLS_ECDHE_") || strings.Contains(s, "CBC") {
			t.Errorf("cipher suite %s is not a forward-secret AEAD", s)
		}
	}

	kc := readYAML(t, r.hostPath(contract.KubeletBootstrapKubeconfig))
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"kind"}, "Config"},
		{[]any{"clusters", 0, "name"}, "test"},
		{[]any{"clusters", 0, "cluster", "server"}, "https://10.0.2.100:6443"},
		{[]any{"clusters", 0, "cluster", "certificate-authority"}, contract.KubeletClusterCA},
		{[]any{"users", 0, "user", "token"}, "abcdef.0123456789abcdef"},
		{[]any{"contexts", 0, "context", "cluster"}, "test"},
		{[]any{"contexts", 0, "context", "user"}, get(t, kc, "users", 0, "name")},
		{[]any{"current-context"}, get(t, kc, "contexts", 0, "name")},
	} {
		if got := get(t, kc, tc.path...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("kubeconfig %v = %#v, want %#v", tc.path, got, tc.want)
		}
	}
	if fi, err := os.Stat(r.hostPath(contract.KubeletBootstrapKubeconfig)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bootstrap kubeconfig (the token): %v, %v; want mode 0600", fi, err)
	}
	if b, _ := os.ReadFile(r.hostPath(contract.KubeletClusterCA)); string(b) != clusterCA(t) {
		t.Errorf("cluster CA file = %q", b)
	}

	e := env(t, r.hostPath(contract.KubeletEnv))
	want := []string{"--kubeconfig=" + contract.KubeletKubeconfig, "--bootstrap-kubeconfig=" + contract.KubeletBootstrapKubeconfig,
		"--node-labels=example.com/role=edge,tier=", "--hostname-override=node-a", "--node-ip=10.0.2.15", "--cloud-provider=external"}
	if got := strings.Fields(e[contract.KubeletFlagsVar]); !slices.Equal(got, want) || len(e) != 1 {
		t.Errorf("env %v: flags %q, want %q", e, got, want)
	}
}

// Without an API server the kubelet runs standalone: no server to authorise for, no kubeconfig.
// Setting it later writes the kubeconfig and restarts the kubelet.
func TestKubeletStandaloneUntilAPIServer(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "containerd", "kubelet"}}
	r := &Renderer{EtcDir: t.TempDir(), Node: Node{Kubelet: true}, Init: initclienttest.Start(t, h, "")}
	if _, err := r.Apply(ctx, decode(t, `{}`), nil); err != nil {
		t.Fatal(err)
	}
	c := readYAML(t, r.hostPath(contract.KubeletConfigPath))
	if get(t, c, "enableServer") != false || get(t, c, "authorization", "mode") != "AlwaysAllow" ||
		get(t, c, "authentication", "webhook", "enabled") != false || get(t, c, "authentication", "anonymous", "enabled") != false ||
		get(t, c, "readOnlyPort") != 0 || get(t, c, "protectKernelDefaults") != true {
		t.Errorf("standalone configuration: %v", c)
	}
	if get(t, c, "maxPods") != 110 || get(t, c, "podPidsLimit") != 4096 || get(t, c, "clusterDomain") != "cluster.local" || get(t, c, "shutdownGracePeriod") != "30s" ||
		get(t, c, "authentication", "x509", "clientCAFile") != nil {
		t.Errorf("defaults: %v", c)
	}
	if e := env(t, r.hostPath(contract.KubeletEnv)); e[contract.KubeletFlagsVar] != "" {
		t.Errorf("standalone flags %q", e[contract.KubeletFlagsVar])
	}
	for _, p := range []string{contract.KubeletBootstrapKubeconfig, contract.KubeletClusterCA} {
		if _, err := os.Stat(r.hostPath(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s without a cluster: %v", p, err)
		}
	}
	s := decode(t, `{"kubernetes":{"api-server":"https://k.example","bootstrap-token":"abcdef.0123456789abcdef"}}`)
	res, err := r.Apply(ctx, s, []string{"settings.kubernetes.api-server", "settings.kubernetes.bootstrap-token"})
	if err != nil || !reflect.DeepEqual(res.Restarted, []string{"kubelet"}) || !slices.Contains(res.Files, contract.KubeletBootstrapKubeconfig) {
		t.Fatalf("Apply of the API server = %+v, %v", res, err)
	}
	kc := readYAML(t, r.hostPath(contract.KubeletBootstrapKubeconfig))
	if get(t, kc, "clusters", 0, "name") != "kubernetes" || get(t, kc, "clusters", 0, "cluster", "certificate-authority") != nil {
		t.Errorf("kubeconfig without a CA: %v", kc)
	}
	if c := readYAML(t, r.hostPath(contract.KubeletConfigPath)); get(t, c, "authorization", "mode") != "Webhook" {
		t.Errorf("joined configuration: %v", c)
	}
}

// Which change restarts what: the kubelet for its keys, containerd for the runtimes, nothing for
// the pod network and registry mirrors (CRI reads those directories again by itself).
func TestKubernetesRestarts(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "containerd", "kubelet"}}
	r := &Renderer{EtcDir: t.TempDir(), Node: Node{Kubelet: true, GVisor: true}, Init: initclienttest.Start(t, h, "")}
	s := decode(t, joinedSettings(t))
	if res, err := r.Apply(ctx, s, nil); err != nil || res.Restarted != nil {
		t.Fatalf("start = %+v, %v", res, err)
	}
	for _, tc := range []struct {
		patch   string
		changed []string
		restart []string
	}{
		{`{"kubernetes":{"max-pods":43}}`, []string{"settings.kubernetes.max-pods"}, []string{"kubelet"}},
		{`{"kubernetes":{"node-labels":{"tier":"b"}}}`, []string{"settings.kubernetes.node-labels.tier"}, []string{"kubelet"}},
		{`{"kubernetes":{"bootstrap-token":"bbbbbb.0123456789abcdef"}}`, []string{"settings.kubernetes.bootstrap-token"}, []string{"kubelet"}},
		{`{"kubernetes":{"runtime-classes":{"gvisor":true}}}`, []string{"settings.kubernetes.runtime-classes.gvisor"}, []string{"containerd"}},
		{`{"kubernetes":{"default-cni":{"enabled":false}}}`, []string{"settings.kubernetes.default-cni.enabled"}, nil},
		{`{"container-registry":{"mirrors":{"docker.io":["https://m.example"]}}}`, []string{"settings.container-registry.mirrors.docker.io"}, nil},
		{`{"container-registry":{"credentials":{"r.example":{"username":"u","password":"p"}}}}`, []string{"settings.container-registry.credentials.r.example"}, []string{"containerd"}},
	} {
		s = mergePatch(t, s, tc.patch)
		res, err := r.Apply(ctx, s, tc.changed)
		if err != nil || !reflect.DeepEqual(res.Restarted, tc.restart) {
			t.Errorf("%s: restarted %v (files %v), %v; want %v", tc.patch, res.Restarted, res.Files, err, tc.restart)
		}
	}
	if _, err := os.Stat(r.hostPath(CNIConfigFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("default pod network still there after it was turned off: %v", err)
	}
}

func TestDefaultPodNetwork(t *testing.T) {
	r := &Renderer{EtcDir: t.TempDir(), Node: Node{Kubelet: true}}
	if _, err := r.Apply(context.Background(), decode(t, `{"kubernetes":{"default-cni":{"subnet":"10.244.3.0/24"}}}`), nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(r.hostPath(CNIConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, b)
	}
	// CRI reads it with libcni.
	list, err := libcni.ConfListFromBytes(b)
	if err != nil || list.Name != "ballast-pods" || len(list.Plugins) != 2 || list.Plugins[0].Network.IPAM.Type != "host-local" {
		t.Errorf("libcni reads %+v, %v", list, err)
	}
	var types []string
	for _, p := range get(t, c, "plugins").([]any) {
		types = append(types, get(t, p, "type").(string))
	}
	if !slices.Equal(types, []string{"bridge", "portmap"}) || get(t, c, "cniVersion") != "1.0.0" {
		t.Errorf("plugins %v in %s", types, b)
	}
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"plugins", 0, "ipam", "type"}, "host-local"},
		{[]any{"plugins", 0, "ipam", "ranges", 0, 0, "subnet"}, "10.244.3.0/24"},
		{[]any{"plugins", 0, "ipam", "routes", 0, "dst"}, "0.0.0.0/0"},
		{[]any{"plugins", 0, "ipam", "dataDir"}, contract.CNIStateDir + "/networks"},
		{[]any{"plugins", 0, "ipMasq"}, true},
		{[]any{"plugins", 0, "isGateway"}, true},
		{[]any{"plugins", 1, "capabilities", "portMappings"}, true},
	} {
		if got := get(t, c, tc.path...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v = %#v, want %#v", tc.path, got, tc.want)
		}
	}
}

func TestCRIConfig(t *testing.T) {
	bundle := testCA
	body := `{"container-runtime":{"max-concurrent-downloads":5,"max-container-log-line-size":4096},` +
		`"container-registry":{"mirrors":{"docker.io":["https://m1.example","http://m2.example:5000"],"*":["https://all.example"]},` +
		`"credentials":{"r.example:5000":{"username":"u","password":"p\"w"}}},` +
		`"pki":{"corp":{"data":"` + bundle + `","trusted":true},"off":{"data":"` + bundle + `","trusted":false}},` +
		`"kubernetes":{"runtime-classes":{"gvisor":true}}}`
	for _, n := range []Node{{Kubelet: true}, {Kubelet: true, GVisor: true}} {
		r := &Renderer{EtcDir: t.TempDir(), Node: n}
		if _, err := r.Apply(context.Background(), decode(t, body), nil); err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if _, err := toml.DecodeFile(r.hostPath(contract.ContainerdConfig), &c); err != nil {
			t.Fatalf("containerd configuration is not TOML: %v", err)
		}
		images := []any{"plugins", "io.containerd.cri.v1.images"}
		rt := []any{"plugins", "io.containerd.cri.v1.runtime"}
		for _, tc := range []struct {
			path []any
			want any
		}{
			{[]any{"version"}, int64(3)},
			{[]any{"root"}, contract.ContainerdRoot},
			{[]any{"grpc", "address"}, contract.ContainerdSocket},
			{[]any{"plugins", "io.containerd.transfer.v1.local", "max_concurrent_downloads"}, int64(5)},
			{append(images, "pinned_images", "sandbox"), contract.PauseImageRef},
			{[]any{"plugins", "io.containerd.grpc.v1.cri", "stream_server_address"}, "127.0.0.1"},
			{[]any{"plugins", "io.containerd.grpc.v1.cri", "stream_server_port"}, "10010"},
			{append(images, "snapshotter"), "overlayfs"},
			{append(images, "registry", "config_path"), CRIRegistryDir},
			{append(images, "registry", "configs", "r.example:5000", "auth", "username"), "u"},
			{append(images, "registry", "configs", "r.example:5000", "auth", "password"), `p"w`},
			{append(rt, "enable_selinux"), true},
			{append(rt, "selinux_category_range"), int64(contract.CRISELinuxCategoryRange)},
			{append(rt, "containerd", "runtimes", contract.RuntimeHandlerRunc, "base_runtime_spec"), contract.CRIBaseSpecPath},
			{[]any{"plugins", "io.containerd.nri.v1.nri", "disable"}, false},
			{[]any{"plugins", "io.containerd.nri.v1.nri", "socket_path"}, contract.NRISocket},
			{[]any{"plugins", "io.containerd.nri.v1.nri", "default_validator", "required_plugins"}, []any{contract.PodPolicyPlugin}},
			{append(rt, "max_container_log_line_size"), int64(4096)},
			{append(rt, "containerd", "default_runtime_name"), contract.RuntimeHandlerRunc},
			{append(rt, "containerd", "runtimes", contract.RuntimeHandlerRunc, "runtime_type"), "io.containerd.runc.v2"},
			{append(rt, "containerd", "runtimes", contract.RuntimeHandlerRunc, "options", "SystemdCgroup"), false},
			{append(rt, "cni", "bin_dirs"), []any{contract.CNIPluginDir, contract.CNIExtraPluginDir}},
			{append(rt, "cni", "conf_dir"), contract.CNIConfigDir},
		} {
			if got := get(t, c, tc.path...); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("gvisor=%v: %v = %#v, want %#v", n.GVisor, tc.path, got, tc.want)
			}
		}
		runsc, ok := get(t, c, append(rt, "containerd", "runtimes")...).(map[string]any)[contract.RuntimeHandlerGVisor]
		if ok != n.GVisor {
			t.Errorf("runsc handler %v in an image with gVisor %v", runsc, n.GVisor)
		}
		if n.GVisor {
			if get(t, runsc, "runtime_type") != "io.containerd.runsc.v1" || get(t, runsc, "options", "ConfigPath") != RunscConfig {
				t.Errorf("runsc handler %v", runsc)
			}
			var rc map[string]any
			if _, err := toml.DecodeFile(r.hostPath(RunscConfig), &rc); err != nil || get(t, rc, "runsc_config", "platform") != "systrap" ||
				get(t, rc, "runsc_config", "oci-seccomp") != "true" || get(t, rc, "runsc_config", "in-sandbox-cgroup") != "v2" {
				t.Errorf("runsc shim configuration %v, %v", rc, err)
			}
		} else if _, err := os.Stat(r.hostPath(RunscConfig)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("runsc shim configuration without runsc: %v", err)
		}
		if fi, err := os.Stat(r.hostPath(contract.ContainerdConfig)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("containerd configuration (registry passwords): %v, %v; want mode 0600", fi, err)
		}

		// hosts.toml: docker.io's mirrors then every registry's, the trusted CA only.
		var hosts struct {
			CA   []string `toml:"ca"`
			Host map[string]struct {
				Capabilities []string `toml:"capabilities"`
				CA           []string `toml:"ca"`
			} `toml:"host"`
		}
		md, err := toml.DecodeFile(r.hostPath(CRIRegistryDir+"/docker.io/hosts.toml"), &hosts)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, k := range md.Keys() {
			if len(k) == 2 && k[0] == "host" {
				order = append(order, k[1])
			}
		}
		if !slices.Equal(order, []string{"https://m1.example", "http://m2.example:5000", "https://all.example"}) ||
			!slices.Equal(hosts.CA, []string{CRIRegistryCA}) || !slices.Equal(hosts.Host["https://m1.example"].Capabilities, []string{"pull", "resolve"}) {
			t.Errorf("docker.io hosts.toml: order %v, %+v", order, hosts)
		}
		if _, err := os.Stat(r.hostPath(CRIRegistryDir + "/_default/hosts.toml")); err != nil {
			t.Errorf("every registry's hosts.toml: %v", err)
		}
		if b, _ := os.ReadFile(r.hostPath(CRIRegistryCA)); string(b) != clusterCA(t) {
			t.Errorf("CA bundle %q, want only the trusted bundle", b)
		}
	}
}

// Hosts files of registries no longer configured go away.
func TestCRIRegistryHostsFollowRemoval(t *testing.T) {
	r := &Renderer{EtcDir: t.TempDir(), Node: Node{Kubelet: true}}
	ctx := context.Background()
	if _, err := r.Apply(ctx, decode(t, `{"container-registry":{"mirrors":{"quay.io":["https://q.example"]}}}`), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.hostPath(CRIRegistryDir + "/quay.io/hosts.toml")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx, decode(t, `{}`), []string{"settings.container-registry.mirrors.quay.io"}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(r.hostPath(CRIRegistryDir)); len(entries) != 0 {
		t.Errorf("%s holds %v after the mirrors went", CRIRegistryDir, entries)
	}
}

func TestKubeletSysctls(t *testing.T) {
	root := hardentest.Root(t)
	proc := filepath.Join(root, "proc")
	for _, kv := range KubeletSysctls() {
		p := filepath.Join(proc, "sys", contract.SysctlPath(kv[0]))
		if strings.HasPrefix(kv[0], "net.bridge.") {
			continue // br_netfilter is loaded with the boot modules
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("7\n"), 0o644)
	}
	waited := false
	r := &Renderer{EtcDir: t.TempDir(), ProcDir: proc, Node: Node{Kubelet: true}, WaitBoot: func(context.Context) error {
		waited = true
		for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
			p := filepath.Join(proc, "sys", contract.SysctlPath(k))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("0\n"), 0o644)
		}
		return nil
	}}
	s := decode(t, `{"kernel":{"sysctl":{"vm.overcommit_memory":"2"}}}`)
	if _, err := r.Apply(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
	if !waited {
		t.Error("the bridge's keys were missing, and the boot modules not waited for")
	}
	for _, kv := range KubeletSysctls() {
		want := kv[1]
		if kv[0] == "vm.overcommit_memory" {
			want = "2" // settings.kernel.sysctl wins
		}
		if got := strings.TrimSpace(hardentest.Read(t, proc, "sys/"+contract.SysctlPath(kv[0]))); got != want {
			t.Errorf("%s = %s, want %s", kv[0], got, want)
		}
	}
	// Without a kubelet they are left alone.
	plainProc := filepath.Join(hardentest.Root(t), "proc")
	p := filepath.Join(plainProc, "sys", contract.SysctlPath("vm.panic_on_oom"))
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("7\n"), 0o644)
	if _, err := (&Renderer{EtcDir: t.TempDir(), ProcDir: plainProc}).Apply(context.Background(), decode(t, `{}`), nil); err != nil {
		t.Fatal(err)
	}
	if got := hardentest.Read(t, plainProc, "sys/"+contract.SysctlPath("vm.panic_on_oom")); got != "7\n" {
		t.Errorf("vm.panic_on_oom = %q without a kubelet", got)
	}
}

func TestDetectNode(t *testing.T) {
	root := t.TempDir()
	if n := DetectNode(root); n != (Node{}) {
		t.Errorf("empty root: %+v", n)
	}
	for _, p := range []string{contract.KubeletPath, contract.RunscPath} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), nil, 0o755)
	}
	if n := DetectNode(root); n != (Node{Kubelet: true}) {
		t.Errorf("kubelet and runsc without its shim: %+v", n)
	}
	os.WriteFile(filepath.Join(root, contract.RunscShimPath), nil, 0o755)
	if n := DetectNode(root); n != (Node{Kubelet: true, GVisor: true}) {
		t.Errorf("everything: %+v", n)
	}
}

// The pod policy's settings: the policy reads them at each decision, so nothing restarts.
func TestPodPolicyConfig(t *testing.T) {
	ctx := context.Background()
	h := &testInit{known: []string{"apiserver", "containerd", "kubelet", "pod-policy"}}
	r := &Renderer{EtcDir: t.TempDir(), Node: Node{Kubelet: true}, Init: initclienttest.Start(t, h, "")}
	read := func() PodPolicyConfig {
		t.Helper()
		b, err := os.ReadFile(r.hostPath(contract.PodPolicyConfig))
		var c PodPolicyConfig
		if err != nil || json.Unmarshal(b, &c) != nil {
			t.Fatalf("pod policy settings %q, %v", b, err)
		}
		return c
	}
	if _, err := r.Apply(ctx, decode(t, `{}`), nil); err != nil || read().AllowPrivilegedPods {
		t.Fatalf("default: %+v, %v", read(), err)
	}
	res, err := r.Apply(ctx, decode(t, `{"kubernetes":{"allow-privileged-pods":true}}`), []string{"settings.kubernetes.allow-privileged-pods"})
	if err != nil || !read().AllowPrivilegedPods || res.Restarted != nil || !slices.Contains(res.Files, contract.PodPolicyConfig) {
		t.Fatalf("allowed: %+v, %+v, %v", read(), res, err)
	}
}
