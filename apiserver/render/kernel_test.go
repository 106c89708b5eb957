package render

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

func TestKernelActions(t *testing.T) {
	root := hardentest.Root(t)
	os.MkdirAll(filepath.Join(root, "sys/module/a"), 0o755)
	os.WriteFile(filepath.Join(root, "sys/module/a/initstate"), []byte("live\n"), 0o444)
	var calls []string
	k := &harden.Kernel{Root: root, Kver: hardentest.Kver,
		Mount: func(source, target, fstype string, flags uintptr, data string) error {
			calls = append(calls, "mount "+target)
			return nil
		},
		DeleteModule: func(name string, flags int) error {
			calls = append(calls, "delete "+name)
			return syscall.EWOULDBLOCK
		},
		Finit: func(f *os.File) error {
			calls = append(calls, "finit fd")
			return nil
		},
	}
	policy := filepath.Join(root, contract.KernelPolicyPath)
	// Blocking and loading wait for the boot's module loading, so neither races it.
	r := &Renderer{EtcDir: t.TempDir(), Kernel: k, PolicyFile: policy, WaitBoot: func(context.Context) error {
		calls = append(calls, "wait")
		return nil
	}}
	s := decode(t, `{"kernel":{"lockdown":"confidentiality","modules":{"a":{"allowed":false},"c":{"autoload":true}}}}`)
	res, err := r.Apply(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hardentest.Read(t, root, contract.LockdownFile); got != "confidentiality" {
		t.Errorf("lockdown file = %q, want confidentiality written", got)
	}
	wantCalls := []string{"wait", "mount /lib/modules/" + hardentest.Kver + "/kernel/a.ko", "mount /lib/modules/" + hardentest.Kver + "/kernel/a.ko", "delete a", "finit fd"}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("calls %q, want %q", calls, wantCalls)
	}
	// a is in use: that is not a failure, it is a note.
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "module a is in use") || !strings.Contains(res.Notes[0], "next boot") {
		t.Errorf("notes %q", res.Notes)
	}
	got, err := contract.ReadKernelPolicy(root)
	want := contract.KernelPolicy{Lockdown: "confidentiality", Blocked: []string{"a"}, Autoload: []string{"c"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("policy file = %+v, %v; want %+v", got, err, want)
	}
	if st, err := os.Stat(policy); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("policy file: %v, %v", st, err)
	}

	// Lowering: the kernel stays, the file changes, and the answer says when it takes effect.
	os.WriteFile(filepath.Join(root, contract.LockdownFile), []byte("none integrity [confidentiality]\n"), 0o644)
	res, err = r.Apply(context.Background(), decode(t, `{"kernel":{"lockdown":"none"}}`), []string{"settings.kernel.lockdown"})
	if err != nil || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "stays at confidentiality") || !strings.Contains(res.Notes[0], "none takes effect at the next boot") {
		t.Errorf("lowering: %+v, %v", res, err)
	}
	if got, _ := contract.ReadKernelPolicy(root); got.Lockdown != "none" {
		t.Errorf("policy file lockdown %q after lowering", got.Lockdown)
	}

	// Allowing a covered module again is left to the next boot too.
	ko := filepath.Join(root, contract.KernelModules, hardentest.Kver, "kernel/a.ko")
	os.Remove(ko)
	os.Link(filepath.Join(root, contract.EmptyFile), ko)
	res, err = r.Apply(context.Background(), decode(t, `{"kernel":{"modules":{"a":{"allowed":true}}}}`), []string{"settings.kernel.modules.a.allowed"})
	if err != nil || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "module a: allowed again") {
		t.Errorf("allowing again: %+v, %v", res, err)
	}
}

// A sysctl a module brings (net.bridge.*) may be missing while the system init is still loading
// the boot modules: the action waits for them then, and only then.
func TestSysctlWaitsForBootModules(t *testing.T) {
	const bridge = "sys/net/bridge/bridge-nf-call-iptables"
	for _, tt := range []struct {
		name      string
		settings  string
		wantWaits int
		want      string // the bridge sysctl after the apply; "" for absent
	}{
		{"built-in keys only", `{"kernel":{"sysctl":{"kernel.kptr_restrict":"2"}}}`, 0, ""},
		{"a module's key", `{"kernel":{"sysctl":{"net.bridge.bridge-nf-call-iptables":"1"}}}`, 1, "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := hardentest.Root(t)
			proc := filepath.Join(root, "proc")
			waits := 0
			r := &Renderer{EtcDir: t.TempDir(), ProcDir: proc, WaitBoot: func(context.Context) error {
				waits++
				// br_netfilter is loaded: its sysctls appear.
				os.MkdirAll(filepath.Dir(filepath.Join(proc, bridge)), 0o755)
				return os.WriteFile(filepath.Join(proc, bridge), []byte("0\n"), 0o644)
			}}
			if _, err := r.Apply(context.Background(), decode(t, tt.settings), nil); err != nil {
				t.Fatal(err)
			}
			if waits != tt.wantWaits {
				t.Errorf("waited %d times, want %d", waits, tt.wantWaits)
			}
			got, _ := os.ReadFile(filepath.Join(proc, bridge))
			if tt.want != "" && strings.TrimSpace(string(got)) != tt.want {
				t.Errorf("%s = %q, want %q", bridge, got, tt.want)
			}
		})
	}
}
