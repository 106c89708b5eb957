// Package render makes the running host match its settings: configuration files under /etc
// rendered from templates, actions on the kernel (host name, sysctls), and restarts of the
// services whose files changed. What depends on which setting is declared once, in Mapping; the
// API lists it (GET /configuration-files) and the settings docs name it.
package render

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
)

// File is a configuration file rendered from settings.
type File struct {
	// Path is where the file lives on the host; it is under /etc.
	Path string
	// Keys are the setting prefixes the file is rendered from. The file is written once one of
	// them is set; until then it is left as the image made it.
	Keys []string
	// Services read the file at start, so they are restarted when its content changes.
	Services []string
	// Template names the template in templates/.
	Template string
	// Always renders the file at every start and on any change of Keys, set or not: its
	// service needs it, and the template holds the defaults.
	Always bool
	// Private makes the file readable by root only: it holds secrets.
	Private bool
	// Content renders the file in Go instead of Template (structured formats, marshalled rather
	// than templated); nil content means the file must not exist, and an existing one is removed.
	Content func(settings.Settings, Node) ([]byte, error)
	// Only limits the file to the images it says yes for (a kubelet image's files); nil is every
	// image.
	Only func(Node) bool
}

// Action changes the running system from settings, apart from files.
type Action struct {
	Name string
	Keys []string
	// Run applies the settings; it is called when one of Keys changed, and at every start when
	// one is set.
	Run func(ctx context.Context, s settings.Settings) error
	// Always runs the action at every start, set or not, and on any change of Keys.
	Always bool
}

// Built-in action names.
const (
	ActionSethostname = "sethostname"
	ActionSysctl      = "sysctl"
	// ActionKernelPolicy writes settings.kernel for the system init to apply at the next boot.
	ActionKernelPolicy = "kernel-policy"
	ActionLockdown     = "lockdown"
	ActionModules      = "kernel-modules"
	// ActionRemoteAPI (re)starts the API's TCP listener; the daemon implements it.
	ActionRemoteAPI = "remote-api"
)

// DefaultMaxConcurrentDownloads is containerd's own default for
// settings.container-runtime.max-concurrent-downloads.
const DefaultMaxConcurrentDownloads = 3

// Files is the declared mapping from settings to configuration files.
func Files() []File {
	return []File{
		{Path: "/etc/motd", Keys: []string{"settings.motd"}, Template: "motd.tmpl"},
		{Path: "/etc/hostname", Keys: []string{"settings.network.hostname"}, Template: "hostname.tmpl"},
		{Path: "/etc/hosts", Keys: []string{"settings.network.hosts"}, Template: "hosts.tmpl"},
		{Path: "/etc/sysctl.d/ballast.conf", Keys: []string{"settings.kernel.sysctl"}, Template: "sysctl.conf.tmpl"},
		// The network service owns /etc/resolv.conf (settings.dns, else DHCP) and falls back to DHCP
		// for the host name; this file tells it what settings say (contract.NetworkConfig).
		{Path: contract.NetworkConfigPath, Keys: []string{"settings.network.interfaces", "settings.dns", "settings.network.hostname"},
			Services: []string{"network"}, Template: "network.json.tmpl"},
		{Path: contract.ProxyEnv, Keys: []string{"settings.network.https-proxy", "settings.network.no-proxy"},
			Services: []string{"containerd"}, Template: "proxy.env.tmpl"},
		{Path: contract.TimeConfig, Keys: []string{"settings.ntp"}, Services: []string{"time"}, Template: "ntp.conf.tmpl"},
		{Path: contract.ContainerdConfig, Keys: []string{"settings.container-runtime.max-concurrent-downloads"}, Services: []string{"containerd"},
			Template: "containerd.toml.tmpl", Always: true, Only: withoutKubelet},
		// A kubelet image's containerd has CRI, configured here too; registry credentials make
		// the file private.
		{Path: contract.ContainerdConfig, Keys: []string{"settings.container-runtime", "settings.container-registry.credentials",
			"settings.kubernetes.runtime-classes"}, Services: []string{"containerd"},
			Content: criConfigFile, Always: true, Private: true, Only: withKubelet},
		{Path: RunscConfig, Keys: []string{"settings.kubernetes.runtime-classes"}, Services: []string{"containerd"},
			Content: runscConfigFile, Always: true, Only: withKubelet},
		// The kubelet's: every key of settings.kubernetes restarts it when it changes what it reads.
		{Path: contract.KubeletConfigPath, Keys: []string{"settings.kubernetes"}, Services: []string{"kubelet"},
			Content: kubeletConfigFile, Always: true, Only: withKubelet},
		{Path: contract.KubeletEnv, Keys: []string{"settings.kubernetes"}, Services: []string{"kubelet"},
			Content: kubeletEnvFile, Always: true, Only: withKubelet},
		{Path: contract.KubeletBootstrapKubeconfig, Keys: []string{"settings.kubernetes.api-server", "settings.kubernetes.cluster-name",
			"settings.kubernetes.cluster-certificate", "settings.kubernetes.bootstrap-token"}, Services: []string{"kubelet"},
			Content: bootstrapKubeconfigFile, Always: true, Private: true, Only: withKubelet},
		{Path: contract.KubeletClusterCA, Keys: []string{"settings.kubernetes.cluster-certificate"}, Services: []string{"kubelet"},
			Content: clusterCAFile, Always: true, Only: withKubelet},
		// The pod policy reads it at each decision: no restart.
		{Path: contract.PodPolicyConfig, Keys: []string{"settings.kubernetes.allow-privileged-pods"}, Content: podPolicyFile, Always: true, Only: withKubelet},
		// CRI watches the directory: no restart.
		{Path: CNIConfigFile, Keys: []string{"settings.kubernetes.default-cni"}, Content: cniConfigFile, Always: true, Only: withKubelet},
		// The host-container manager reads it again when it changes: no restart, so containers
		// that did not change keep running. It holds credentials and user data.
		{Path: contract.ContainersConfigPath, Keys: []string{"settings.host-containers", "settings.bootstrap-containers",
			"settings.oci-defaults", "settings.container-registry", "settings.pki", "settings.network.https-proxy",
			"settings.network.no-proxy"}, Template: "containers.json.tmpl", Always: true, Private: true},
	}
}

// ActionKeys are the setting prefixes of the built-in actions, and of the ones the daemon adds.
func ActionKeys() map[string][]string {
	return map[string][]string{
		ActionSethostname:  {"settings.network.hostname"},
		ActionSysctl:       {"settings.kernel.sysctl"},
		ActionKernelPolicy: {"settings.kernel"},
		ActionLockdown:     {"settings.kernel.lockdown"},
		ActionModules:      {"settings.kernel.modules"},
		ActionRemoteAPI:    {"settings.api.remote"},
		// Kubelet images only.
		ActionKubeletSysctl: {"settings.kernel.sysctl"},
		ActionCRIRegistry:   {"settings.container-registry.mirrors", "settings.pki"},
	}
}

// ReaderUpdateAgent is the update agent: it reads settings.updates, the proxy and the trusted
// CA bundles at each check, apply and activate (apiserver/updateconfig), so a change needs nothing
// rendered or restarted.
const ReaderUpdateAgent = "update-agent"

// Readers are the components that read settings themselves each time they act, by the setting
// prefixes they read; the settings reference names them like files and actions.
func Readers() map[string][]string {
	return map[string][]string{
		ReaderUpdateAgent: {"settings.updates", "settings.network.https-proxy", "settings.network.no-proxy", "settings.pki"},
	}
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// templates parses the embedded templates. They are fixed at build time, so a parse error is a
// bug that every test run catches.
func templates() (*template.Template, error) {
	return template.New("").Option("missingkey=error").Funcs(template.FuncMap{
		"join": func(list any, sep string) string {
			return strings.Join(toStrings(list), sep)
		},
		"line": func(s *string) string {
			if s == nil || *s == "" || strings.HasSuffix(*s, "\n") {
				return deref(s)
			}
			return *s + "\n"
		},
		"networkConfig":    networkConfigJSON,
		"containersConfig": containersConfigJSON,
		"containerdRoot":   func() string { return contract.ContainerdRoot },
		"containerdState":  func() string { return contract.ContainerdState },
		"containerdSocket": func() string { return contract.ContainerdSocket },
		"maxDownloads": func(r *settings.ContainerRuntime) int64 {
			if r == nil || r.MaxConcurrentDownloads == nil {
				return DefaultMaxConcurrentDownloads
			}
			return *r.MaxConcurrentDownloads
		},
		"noProxy": func(list []settings.NoProxyEntry) string {
			// Local traffic never goes through the proxy, whatever the list says.
			out := []string{"localhost", "127.0.0.1", "::1"}
			for _, e := range list {
				if !slices.Contains(out, string(e)) {
					out = append(out, string(e))
				}
			}
			return strings.Join(out, ",")
		},
	}).ParseFS(templateFS, "templates/*.tmpl")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func toStrings(list any) []string {
	switch l := list.(type) {
	case []settings.Hostname:
		return convert(l)
	case []settings.DomainName:
		return convert(l)
	case []string:
		return l
	}
	return []string{fmt.Sprint(list)}
}

func convert[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = string(v)
	}
	return out
}

// Renderer applies settings to the host.
type Renderer struct {
	// EtcDir stands for /etc: a file's Path is placed under it.
	EtcDir string
	// ProcDir stands for /proc; "" leaves sysctls to the next boot (the file is still written).
	ProcDir string
	// Kernel is the running kernel, for lockdown and module policy; nil leaves them to the next
	// boot (tests, non-root servers).
	Kernel *harden.Kernel
	// PolicyFile is where the system init finds settings.kernel at boot
	// (contract.KernelPolicyPath); "" writes none.
	PolicyFile string
	// SetHostname sets the kernel's host name; nil leaves it alone (tests, non-root servers).
	SetHostname func(name string) error
	// Init restarts services; nil restarts nothing.
	Init initclient.Init
	// Actions run beside the built-in ones (the daemon's remote API listener).
	Actions []Action
	// Node is what the image offers a Kubernetes node (DetectNode); the zero Node is an image
	// without a kubelet.
	Node Node
	// Log gets what is worth knowing but is not an error; nil discards it.
	Log *slog.Logger
	// WaitBoot, when set, returns once the system init has loaded the boot modules (at once
	// after that). The sysctl action waits for it when a key is missing (a module brings it) and
	// the modules action before it blocks or loads one, so neither races the boot's loading.
	WaitBoot func(context.Context) error

	// The templates, parsed on first use.
	tmplOnce sync.Once
	tmpl     *template.Template
	tmplErr  error
}

// Result says what an apply did.
type Result struct {
	Files     []string // files whose content changed
	Actions   []string // actions run
	Restarted []string // services restarted
	// Notes are changes the running kernel does not make, which take effect at the next boot.
	Notes []string
}

// Apply makes the host match s. With changed nil (at start), every file and action whose keys
// are set is applied and nothing is restarted: services start after the apiserver and read the
// files then. Otherwise only what depends on a changed key is applied, and the services whose
// files changed are restarted. Apply carries on past failures and returns them all.
func (r *Renderer) Apply(ctx context.Context, s settings.Settings, changed []string) (Result, error) {
	var res Result
	var errs []error
	set := s.Keys()
	affected := func(keys []string) bool {
		if changed == nil {
			return anyUnder(set, keys)
		}
		return anyUnder(changed, keys)
	}
	r.tmplOnce.Do(func() { r.tmpl, r.tmplErr = templates() })
	if r.tmplErr != nil {
		return res, fmt.Errorf("render: templates: %w", r.tmplErr)
	}
	tmpl := r.tmpl
	var restart []string
	for _, f := range r.files() {
		switch {
		case f.Always && changed == nil:
		case f.Always && anyUnder(changed, f.Keys):
		case !affected(f.Keys) || !anyUnder(set, f.Keys):
			continue
		}
		wrote, err := r.renderFile(tmpl, f, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if wrote {
			res.Files = append(res.Files, f.Path)
			if changed != nil {
				restart = appendNew(restart, f.Services...)
			}
		}
	}
	for _, a := range r.actions() {
		switch {
		case a.Always && (changed == nil || anyUnder(changed, a.Keys)):
		case !affected(a.Keys):
			continue
		}
		res.Actions = append(res.Actions, a.Name)
		notes, err := splitNotes(a.Run(ctx, s))
		res.Notes = append(res.Notes, notes...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Name, err))
		}
	}
	restarted, err := r.restart(ctx, restart)
	res.Restarted = restarted
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

func (r *Renderer) actions() []Action {
	keys := ActionKeys()
	builtin := []Action{
		{Name: ActionSethostname, Keys: keys[ActionSethostname], Run: r.sethostname},
		{Name: ActionKernelPolicy, Keys: keys[ActionKernelPolicy], Run: r.writeKernelPolicy},
		{Name: ActionSysctl, Keys: keys[ActionSysctl], Run: r.sysctl},
		{Name: ActionLockdown, Keys: keys[ActionLockdown], Run: r.lockdown},
		{Name: ActionModules, Keys: keys[ActionModules], Run: r.modules},
	}
	if r.Node.Kubelet {
		// After the sysctl action, which writes settings.kernel.sysctl: these fill in around it.
		builtin = append(builtin,
			Action{Name: ActionKubeletSysctl, Keys: keys[ActionKubeletSysctl], Run: r.kubeletSysctl, Always: true},
			Action{Name: ActionCRIRegistry, Keys: keys[ActionCRIRegistry], Run: r.criRegistryHosts, Always: true})
	}
	return append(builtin, r.Actions...)
}

// files are the files of this image.
func (r *Renderer) files() []File {
	var out []File
	for _, f := range Files() {
		if f.Only == nil || f.Only(r.Node) {
			out = append(out, f)
		}
	}
	return out
}

// anyUnder reports whether one of keys lies under one of prefixes.
func anyUnder(keys, prefixes []string) bool {
	for _, k := range keys {
		for _, p := range prefixes {
			if settings.HasPrefix(k, p) {
				return true
			}
		}
	}
	return false
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// renderFile writes f when its content differs from what is there (or removes it when its
// Content says it must not exist), and reports whether it did.
func (r *Renderer) renderFile(tmpl *template.Template, f File, s settings.Settings) (bool, error) {
	var buf bytes.Buffer
	path := r.hostPath(f.Path)
	if f.Content != nil {
		b, err := f.Content(s, r.Node)
		if err != nil {
			return false, fmt.Errorf("render %s: %w", f.Path, err)
		}
		if b == nil {
			err := os.Remove(path)
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("render %s: %w", f.Path, err)
			}
			return true, nil
		}
		buf.Write(b)
	} else if err := tmpl.ExecuteTemplate(&buf, f.Template, s); err != nil {
		return false, fmt.Errorf("render %s: %w", f.Path, err)
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, buf.Bytes()) {
		return false, nil
	}
	mode, dirMode := os.FileMode(0o644), os.FileMode(0o755)
	if f.Private {
		mode, dirMode = 0o600, 0o700
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return false, fmt.Errorf("render %s: %w", f.Path, err)
	}
	if err := writeFile(path, buf.Bytes(), mode); err != nil {
		return false, err
	}
	return true, nil
}

func (r *Renderer) hostPath(p string) string {
	return filepath.Join(r.EtcDir, strings.TrimPrefix(p, "/etc/"))
}

// writeFile replaces a file through a rename, so a reader never sees it half written. No fsync:
// /etc is a tmpfs rebuilt from settings on every boot.
func writeFile(path string, content []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (r *Renderer) sethostname(_ context.Context, s settings.Settings) error {
	if r.SetHostname == nil || s.Network == nil || s.Network.Hostname == nil {
		return nil
	}
	name := string(*s.Network.Hostname)
	if err := r.SetHostname(name); err != nil {
		return fmt.Errorf("sethostname %q: %w", name, err)
	}
	return nil
}

// restart restarts the services among ids that the init supervises. Services this image does not
// run (containerd on a host without it) did not read the old file, so there is nothing to do for
// them; neither is there without an init that speaks the protocol.
func (r *Renderer) restart(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 || r.Init == nil {
		return nil, nil
	}
	svcs, err := r.Init.Services(ctx)
	if errors.Is(err, initclient.ErrUnavailable) {
		r.log().Warn("not restarting services: the system init is not reachable", "services", ids)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("restart %s: %w", strings.Join(ids, ", "), err)
	}
	var run []string
	for _, id := range ids {
		if slices.ContainsFunc(svcs, func(s apitypes.Service) bool { return s.ID == id }) {
			run = append(run, id)
		}
	}
	if len(run) == 0 {
		return nil, nil
	}
	if err := r.Init.Restart(ctx, run...); err != nil {
		return nil, fmt.Errorf("restart %s: %w", strings.Join(run, ", "), err)
	}
	return run, nil
}

func (r *Renderer) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Mapping describes what depends on which settings, for GET /configuration-files.
func (r *Renderer) Mapping() apitypes.ConfigurationFiles {
	var m apitypes.ConfigurationFiles
	for _, f := range r.files() {
		m.Files = append(m.Files, apitypes.ConfigFile{Path: f.Path, Keys: f.Keys, Services: orEmpty(f.Services)})
	}
	for _, a := range r.actions() {
		m.Actions = append(m.Actions, apitypes.ConfigAction{Name: a.Name, Keys: a.Keys})
	}
	return m
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// AppliedBy names what applies a documented key (a path that may hold <placeholders>): the files,
// actions and readers whose prefixes cover it, for the settings reference.
func AppliedBy(key string) []string {
	var out []string
	for _, f := range Files() {
		if anyUnder([]string{key}, f.Keys) {
			out = appendNew(out, f.Path)
		}
	}
	for _, byName := range []map[string][]string{ActionKeys(), Readers()} {
		names := make([]string, 0, len(byName))
		for name := range byName {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if anyUnder([]string{key}, byName[name]) {
				out = append(out, name)
			}
		}
	}
	return out
}
