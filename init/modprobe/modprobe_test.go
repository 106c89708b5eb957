package modprobe

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/harden/hardentest"
)

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name   string
		policy string // kernel policy file; "" for none
		args   []string
		code   int
		loaded []string
		log    string // substring of the kernel log; "" for nothing logged
		stderr string
	}{
		{name: "the kernel asks by alias", args: []string{"-q", "--", "fs-bee"}, loaded: []string{"a", "b-mod"}},
		{name: "by name", args: []string{"-v", "b_mod"}, loaded: []string{"a", "b-mod"}, stderr: "modprobe: loaded b_mod"},
		{name: "blocked", policy: `{"blocked_modules":["b_mod"]}`, args: []string{"-q", "--", "fs-bee"}, code: ExitFail,
			log: "<4>ballast: modprobe: refused b_mod (requested as fs-bee): kmod: b_mod: blocked by the kernel policy (settings.kernel.modules.b_mod.allowed = false)\n",
			// A refusal is said on stderr even with -q: someone at a console asked for it.
			stderr: "modprobe: refused b_mod"},
		{name: "dependency blocked", policy: `{"blocked_modules":["a"]}`, args: []string{"b-mod"}, code: ExitFail, log: "needs a, blocked by the kernel policy"},
		{name: "others still load", policy: `{"blocked_modules":["a"]}`, args: []string{"c"}, loaded: []string{"c"}},
		{name: "unknown", args: []string{"-q", "nope"}, code: ExitFail, log: "<6>ballast: modprobe: nope: no such module in this image\n"},
		{name: "built in", args: []string{"builtin"}},
		{name: "unreadable policy fails closed", policy: `{"lockdown":`, args: []string{"c"}, code: ExitFail, log: "refused c: kernel policy"},
		{name: "parameters", args: []string{"c", "debug=1"}, code: ExitUsage, stderr: "module parameters are not supported"},
		{name: "removal", args: []string{"-r", "c"}, code: ExitUsage, stderr: `option "-r" is not supported`},
		{name: "nothing", args: []string{"-q"}, code: ExitUsage, stderr: "usage:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := hardentest.Root(t)
			os.MkdirAll(filepath.Join(root, "sys/module/builtin"), 0o755)
			if tt.policy != "" {
				p := filepath.Join(root, contract.KernelPolicyPath)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(tt.policy), 0o600)
			}
			var log, stderr bytes.Buffer
			var loaded []string
			code := Run(tt.args, Options{Root: root, Kver: hardentest.Kver, Log: &log, Stderr: &stderr,
				Finit: func(f *os.File) error {
					b, _ := os.ReadFile(f.Name())
					n := len(b)
					loaded = append(loaded, strings.TrimPrefix(string(b[:n]), "module "))
					return nil
				}})
			if code != tt.code || !slices.Equal(loaded, tt.loaded) {
				t.Errorf("exit %d, loaded %q; want %d, %q (stderr %q)", code, loaded, tt.code, tt.loaded, stderr.String())
			}
			if (tt.log == "") != (log.Len() == 0) || !strings.Contains(log.String(), tt.log) {
				t.Errorf("kernel log %q, want %q", log.String(), tt.log)
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
		})
	}
}
