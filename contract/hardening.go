package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ImageParams are the command line words every Ballast UKI carries, before the variant's own (so
// a variant can override one on purpose) and the boot parameters.
//
// lsm= replaces Debian's default list (which makes AppArmor the major LSM) with the one Ballast's
// SELinux policy will need: lockdown, so the system init can raise the lockdown level; Yama for
// kernel.yama.ptrace_scope; SELinux, whose policy the initramfs init loads, enforcing.
//
// enforcing=1: SELinux enforces from the kernel's start; the initramfs init writes 1 to enforce
// again before it loads the policy, so a command line without the word changes nothing.
func ImageParams() Cmdline {
	return Cmdline{KV("lsm", LSMs), KV("enforcing", "1")}
}

// LSMs is the lsm= list of ImageParams.
const LSMs = "landlock,lockdown,yama,integrity,selinux,bpf"

// Holds says how an observed sysctl value is compared with its hardened default.
type Holds int

// Comparisons of SysctlDefault.Holds; values that are not integers never hold.
const (
	AtLeast Holds = iota // observed >= default: a larger number restricts more
	AtMost               // observed <= default: the default is 0, and anything else allows more
	NonZero              // any value but 0: the non-zero values differ in kind, not in strength
)

// Rule says in words which values satisfy the default, e.g. "at least 1" or "not 0".
func (d SysctlDefault) Rule() string {
	switch d.Holds {
	case AtLeast:
		return "at least " + d.Value
	case AtMost:
		return "at most " + d.Value
	case NonZero:
		return "not 0"
	}
	return fmt.Sprintf("Holds(%d)", int(d.Holds))
}

// SysctlDefault is one hardened sysctl: the value the system init writes before the first service
// starts, unless settings.kernel.sysctl overrides the key.
type SysctlDefault struct {
	Key   string // dotted name, e.g. kernel.kptr_restrict
	Value string
	Holds Holds
	// OneWay: the kernel refuses to go back from Value while it runs, so an override that weakens
	// it takes effect at the next boot (the system init writes overrides instead of defaults).
	OneWay bool
	Why    string
}

// HardenedSysctls are Ballast's sysctl defaults. ip_forward and the bridge netfilter switches are
// left alone: container networking sets them as it needs them.
func HardenedSysctls() []SysctlDefault {
	return []SysctlDefault{
		{Key: "kernel.kptr_restrict", Value: "1", Holds: AtLeast, Why: "kernel addresses in /proc and elsewhere are hidden from processes without CAP_SYSLOG: they tell an exploit where the randomised kernel lies"},
		{Key: "kernel.dmesg_restrict", Value: "1", Holds: AtLeast, Why: "the kernel log (addresses, devices, other containers' faults) is for CAP_SYSLOG only"},
		{Key: "kernel.yama.ptrace_scope", Value: "1", Holds: AtLeast, Why: "a process may trace only its own descendants, so one compromised process cannot read its siblings' memory"},
		{Key: "kernel.unprivileged_bpf_disabled", Value: "1", Holds: NonZero, OneWay: true, Why: "no BPF programs without CAP_BPF: the verifier is a frequent way into the kernel; 1 (unlike 2) cannot be undone while the kernel runs"},
		{Key: "net.core.bpf_jit_harden", Value: "2", Holds: AtLeast, Why: "constants in JIT-compiled BPF are blinded for every user, against JIT spraying"},
		{Key: "kernel.kexec_load_disabled", Value: "1", Holds: AtLeast, OneWay: true, Why: "the running kernel cannot be replaced through kexec, which would step around the verified boot chain"},
		{Key: "kernel.perf_event_paranoid", Value: "3", Holds: AtLeast, Why: "no perf events without CAP_PERFMON (3 is Debian's level for that): they expose kernel addresses and timing"},
		{Key: "kernel.panic_on_oops", Value: "1", Holds: AtLeast, Why: "after an oops the kernel's state is unknown and may be an attacker's; panic, then reboot (kernel.panic)"},
		{Key: "kernel.panic", Value: "10", Holds: NonZero, Why: "reboot 10 s after a panic instead of hanging, as panic=10 on the command line asks; 0 would hang"},
		{Key: "kernel.randomize_va_space", Value: "2", Holds: AtLeast, Why: "full address space layout randomisation (stack, mmap, heap)"},
		{Key: "fs.protected_hardlinks", Value: "1", Holds: AtLeast, Why: "no hard links to files one cannot write, the classic way to trick a privileged program in /tmp"},
		{Key: "fs.protected_symlinks", Value: "1", Holds: AtLeast, Why: "symlinks in sticky world-writable directories are followed only when their owner is the follower or the directory's owner"},
		{Key: "fs.protected_fifos", Value: "2", Holds: AtLeast, Why: "no opening others' FIFOs with O_CREAT in sticky world-writable directories (group-writable ones too)"},
		{Key: "fs.protected_regular", Value: "2", Holds: AtLeast, Why: "the same for regular files: no writing into a file another user planted in /tmp"},
		{Key: "fs.suid_dumpable", Value: "0", Holds: AtMost, Why: "no core dumps of processes that changed privileges: their memory holds what they were trusted with"},
		{Key: "dev.tty.ldisc_autoload", Value: "0", Holds: AtMost, Why: "opening a TTY line discipline does not load its module, a known path to exploitable old code"},
		{Key: "vm.unprivileged_userfaultfd", Value: "0", Holds: AtMost, Why: "userfaultfd, a tool for winning kernel races, needs CAP_SYS_PTRACE"},
		{Key: "net.ipv4.tcp_syncookies", Value: "1", Holds: AtLeast, Why: "SYN cookies when the backlog overflows: a SYN flood does not lock clients out"},
		{Key: "net.ipv4.conf.all.rp_filter", Value: "2", Holds: NonZero, Why: "drop packets whose source is not routable through any interface (spoofing); loose mode, because container networks route asymmetrically"},
		{Key: "net.ipv4.conf.default.rp_filter", Value: "2", Holds: NonZero, Why: "the same for interfaces created later (container veths, bridges)"},
		{Key: "net.ipv4.conf.all.accept_redirects", Value: "0", Holds: AtMost, Why: "ICMP redirects from the network could reroute the host's traffic; routes come from DHCP and settings"},
		{Key: "net.ipv4.conf.default.accept_redirects", Value: "0", Holds: AtMost, Why: "the same for interfaces created later"},
		{Key: "net.ipv6.conf.all.accept_redirects", Value: "0", Holds: AtMost, Why: "the same for IPv6"},
		{Key: "net.ipv6.conf.default.accept_redirects", Value: "0", Holds: AtMost, Why: "the same for IPv6 interfaces created later"},
		{Key: "net.ipv4.conf.all.send_redirects", Value: "0", Holds: AtMost, Why: "a host forwarding for its containers is not its network's router: redirects would only tell the LAN about container routes"},
		{Key: "net.ipv4.conf.default.send_redirects", Value: "0", Holds: AtMost, Why: "the same for interfaces created later"},
		{Key: "net.ipv4.conf.all.accept_source_route", Value: "0", Holds: AtMost, Why: "source-routed packets pick their own path past filters"},
		{Key: "net.ipv6.conf.all.accept_source_route", Value: "0", Holds: AtMost, Why: "the same for IPv6"},
	}
}

// Satisfied reports whether an observed value (as read from /proc/sys, blanks trimmed) is at
// least as strict as the default.
func (d SysctlDefault) Satisfied(observed string) bool {
	want, err1 := strconv.ParseInt(d.Value, 10, 64)
	got, err2 := strconv.ParseInt(strings.TrimSpace(observed), 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	switch d.Holds {
	case AtLeast:
		return got >= want
	case AtMost:
		return got <= want
	case NonZero:
		return got != 0
	}
	return false
}

// SysctlPath returns a sysctl's file under /proc/sys. Dots separate levels in the dotted form; in
// the slashed form a dot belongs to the name (an interface like eth0.100), as sysctl(8) has it.
func SysctlPath(key string) string {
	if strings.Contains(key, "/") {
		return key
	}
	return strings.ReplaceAll(key, ".", "/")
}

// ModprobeSysctl names the program the kernel runs for its own module requests (request_module).
// The system init points it at ModprobePath, so those requests meet the module policy too; it is
// not a key settings may override.
const ModprobeSysctl = "kernel.modprobe"

// Lockdown is a level of the kernel's lockdown LSM.
type Lockdown string

// Lockdown levels, weakest first.
const (
	LockdownNone            Lockdown = "none"
	LockdownIntegrity       Lockdown = "integrity"
	LockdownConfidentiality Lockdown = "confidentiality"
)

// DefaultLockdown is the level the system init raises the kernel to when settings name none:
// integrity keeps root from changing the running kernel (unsigned modules, /dev/mem, kexec of
// unsigned kernels, MSRs) while leaving tracing and BPF reads to the operator.
const DefaultLockdown = LockdownIntegrity

// Rank orders levels: none 0, integrity 1, confidentiality 2; -1 for an unknown level.
func (l Lockdown) Rank() int {
	return slices.Index([]Lockdown{LockdownNone, LockdownIntegrity, LockdownConfidentiality}, l)
}

// ParseLockdown reads /sys/kernel/security/lockdown ("none [integrity] confidentiality"): the
// level in brackets is the current one.
func ParseLockdown(text string) (Lockdown, error) {
	for _, w := range strings.Fields(text) {
		if len(w) > 2 && w[0] == '[' && w[len(w)-1] == ']' {
			l := Lockdown(w[1 : len(w)-1])
			if l.Rank() < 0 {
				return "", fmt.Errorf("lockdown: unknown level %q", l)
			}
			return l, nil
		}
	}
	return "", fmt.Errorf("lockdown: no current level in %q", strings.TrimSpace(text))
}

// KernelPolicy is KernelPolicyPath: the kernel settings as the system init applies them at boot,
// before any service (and so before the API server) runs. The API server writes it whenever
// settings.kernel changes; without it the system init applies Ballast's defaults.
type KernelPolicy struct {
	Lockdown Lockdown          `json:"lockdown,omitempty"` // "" is DefaultLockdown
	Sysctl   map[string]string `json:"sysctl,omitempty"`   // settings.kernel.sysctl, over HardenedSysctls
	// Blocked and Autoload are canonical module names (ModuleName), sorted.
	Blocked  []string `json:"blocked_modules,omitempty"`
	Autoload []string `json:"autoload_modules,omitempty"`
}

// Level is the lockdown level the policy asks for.
func (p KernelPolicy) Level() Lockdown {
	if p.Lockdown == "" {
		return DefaultLockdown
	}
	return p.Lockdown
}

// Blocks reports whether the policy forbids loading a module, by any spelling of its name.
func (p KernelPolicy) Blocks(module string) bool {
	return slices.Contains(p.Blocked, ModuleName(module))
}

// Sysctls returns the values the policy asks for: HardenedSysctls with the overrides in place,
// then the other overridden keys, sorted. Keys are compared by their /proc/sys path, so
// "kernel/kptr_restrict" overrides kernel.kptr_restrict.
func (p KernelPolicy) Sysctls() [][2]string {
	over := map[string]string{}
	var extra []string
	for k, v := range p.Sysctl {
		over[SysctlPath(k)] = v
		extra = append(extra, k)
	}
	var out [][2]string
	seen := map[string]bool{}
	for _, d := range HardenedSysctls() {
		path := SysctlPath(d.Key)
		v, ok := over[path]
		if !ok {
			v = d.Value
		}
		out = append(out, [2]string{d.Key, v})
		seen[path] = true
	}
	slices.Sort(extra)
	for _, k := range extra {
		if !seen[SysctlPath(k)] {
			out = append(out, [2]string{k, p.Sysctl[k]})
			seen[SysctlPath(k)] = true
		}
	}
	return out
}

// Marshal is the policy file's bytes: indented, with a final newline.
func (p KernelPolicy) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KernelPolicyPath, err)
	}
	return append(b, '\n'), nil
}

// ReadKernelPolicy reads the policy under root ("/" on a running host). A missing file is the
// empty policy (Ballast's defaults), not an error.
func ReadKernelPolicy(root string) (KernelPolicy, error) {
	path := filepath.Join(root, KernelPolicyPath)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return KernelPolicy{}, nil
	}
	if err != nil {
		return KernelPolicy{}, fmt.Errorf("kernel policy: %w", err)
	}
	var p KernelPolicy
	if err := json.Unmarshal(b, &p); err != nil {
		return KernelPolicy{}, fmt.Errorf("kernel policy %s: %w", path, err)
	}
	if p.Lockdown != "" && p.Lockdown.Rank() < 0 {
		return KernelPolicy{}, fmt.Errorf("kernel policy %s: unknown lockdown level %q", path, p.Lockdown)
	}
	for i, m := range p.Blocked {
		p.Blocked[i] = ModuleName(m)
	}
	for i, m := range p.Autoload {
		p.Autoload[i] = ModuleName(m)
	}
	return p, nil
}

// Listener is a socket a Ballast host may listen on, besides the remote API (whose address is a
// setting).
type Listener struct {
	Proto string // tcp, tcp6, udp, udp6
	Port  int
	Who   string
}

// DeclaredListeners are the listening sockets the hardening report accepts. A socket that is not
// here, and not the remote API's, is reported.
func DeclaredListeners() []Listener {
	return []Listener{
		// A DHCP client that binds its port rather than using a packet socket.
		{Proto: "udp", Port: 68, Who: "DHCPv4 client (netconf)"},
		{Proto: "udp6", Port: 546, Who: "DHCPv6 client (netconf)"},
	}
}

// interpreterRE names shells and interpreters by file or link name. They have no place on a
// production host: nothing on it should run scripts, and an attacker who gets code execution
// should not find a ready-made one. The builder refuses them in production images; the hardening
// report looks for them on the running root.
var interpreterRE = regexp.MustCompile(`^(sh|ash|bash|dash|zsh|ksh|mksh|csh|tcsh|fish|busybox|toybox|` +
	`perl|perl5.*|python.*|ruby.*|irb.*|lua.*|luajit.*|tclsh.*|wish.*|php.*|node|nodejs|` +
	`awk|gawk|mawk|nawk|expect|guile.*|rc|es|scsh)$`)

// IsInterpreter reports whether a file name (not a path) is a shell's or an interpreter's.
func IsInterpreter(name string) bool { return interpreterRE.MatchString(name) }
