package sepolicy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/filecon"
	"github.com/ballast-os/ballast/runtime/spec"
	"github.com/ballast-os/ballast/tests/testutil"
)

func compile(t *testing.T, dev bool, extra string) (Result, error) {
	t.Helper()
	testutil.Tool(t, "secilc", "secilc")
	dir := t.TempDir()
	src := filepath.Join(testutil.RepoRoot(t), "selinux", "policy")
	if extra != "" {
		// A copy of the sources with one more file.
		copyDir := filepath.Join(dir, "src")
		for _, sub := range []string{"", "dev"} {
			if err := os.MkdirAll(filepath.Join(copyDir, sub), 0o755); err != nil {
				t.Fatal(err)
			}
			m, _ := filepath.Glob(filepath.Join(src, sub, "*.cil"))
			for _, f := range m {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(copyDir, sub, filepath.Base(f)), b, 0o644)
			}
		}
		os.WriteFile(filepath.Join(copyDir, "zz-extra.cil"), []byte(extra), 0o644)
		src = copyDir
	}
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o755)
	return Compile(t.Context(), Options{Dir: src, Dev: dev, Programs: contract.Programs(), Work: work})
}

// The policy compiles for both kinds of variant, byte for byte the same each time, and its
// file_contexts labels the programs of the table with their Label.
func TestCompile(t *testing.T) {
	for _, dev := range []bool{false, true} {
		r, err := compile(t, dev, "")
		if err != nil {
			t.Fatalf("dev=%v: %v", dev, err)
		}
		first, _ := os.ReadFile(r.Policy)
		r2, err := compile(t, dev, "")
		if err != nil {
			t.Fatal(err)
		}
		second, _ := os.ReadFile(r2.Policy)
		if len(first) == 0 || !bytes.Equal(first, second) {
			t.Errorf("dev=%v: two compiles differ (%d and %d bytes)", dev, len(first), len(second))
		}
		fc, _ := os.ReadFile(r.FileContexts)
		for _, p := range contract.Programs() {
			if p.Initramfs || p.Label == "" {
				continue
			}
			want := regexp.QuoteMeta(p.Path) + "\t--\tsystem_u:object_r:" + p.Label + ":s0"
			if !strings.Contains(string(fc), want) {
				t.Errorf("dev=%v: file_contexts lacks %q", dev, want)
			}
		}
		// Files the initramfs writes get their types from file_contexts too, more specific
		// entries over the directories' (init/filecon reads it as the inits do).
		specs, err := filecon.Load(r.FileContexts)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []struct {
			path string
			mode os.FileMode
			want string
		}{
			{contract.BootSecurityPath, 0o644, "boot_security_t"},
			// The dot is escaped: a file that merely resembles the record's name is not it.
			{"/run/ballast/boot-securityxjson", 0o644, "os_t"},
			{contract.RecoveryKeyPath, 0o600, "recovery_key_t"},
			{contract.RecoveryKeyPath + ".new", 0o600, "state_t"},
			{filepath.Dir(contract.RecoveryKeyPath), os.ModeDir | 0o700, "state_t"},
		} {
			want := "system_u:object_r:" + l.want + ":s0"
			if got, _ := specs.Lookup(l.path, l.mode); got != want {
				t.Errorf("dev=%v: file_contexts gives %s %q, want %q", dev, l.path, got, want)
			}
		}
		hasConsole := strings.Contains(string(first), "console_t")
		if hasConsole != dev {
			t.Errorf("dev=%v: console_t in the policy: %v", dev, hasConsole)
		}
	}
}

// The types the runtime and the contract name exist in the sources.
func TestTypesTheCodeNames(t *testing.T) {
	srcs, err := Sources(filepath.Join(testutil.RepoRoot(t), "selinux", "policy"), false)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, s := range srcs {
		b, _ := os.ReadFile(s)
		all.Write(b)
	}
	for _, typ := range []string{spec.ContainerType, spec.ControlType, spec.SuperType, spec.ContainerFile,
		"kernel_t", "initramfs_t", "init_t", "api_t", "runtime_t", "hostctr_t", "netconf_t", "timesync_t",
		"etc_t", "run_t", "tmp_t", "local_t", "rootfs_t", "esp_t", "fixed_disk_device_t", "update_state_t",
		"boot_security_t", "recovery_key_t"} {
		if !strings.Contains(all.String(), "(type "+typ+")") {
			t.Errorf("no (type %s) in selinux/policy", typ)
		}
	}
}

// A rule that breaks a neverallow fails the build, naming the rule; so does a label of a type
// the policy lacks.
func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct{ name, extra, want string }{
		{"setenforce", "(allow super_t security_t (security (setenforce)))", "neverallow check failed"},
		{"reload", "(allow init_t security_t (security (load_policy)))", "neverallow check failed"},
		{"enforce file", "(allow init_t security_t (file (write)))", "neverallow check failed"},
		{"container reads secrets", "(allow container_t secret_t (file (read open)))", "neverallow check failed"},
		{"container writes local", "(allow container_t local_t (file (write)))", "neverallow check failed"},
		{"raw sockets", "(allow container_t self (rawip_socket (create)))", "neverallow check failed"},
		{"service writes the disk", "(allow netconf_t fixed_disk_device_t (blk_file (write)))", "neverallow check failed"},
		{"host containers write the disk", "(allow hostctr_t fixed_disk_device_t (blk_file (write)))", "neverallow check failed"},
		{"service writes the ESP", "(allow timesync_t esp_t (file (write)))", "neverallow check failed"},
		{"container reads the recovery key", "(allow container_t recovery_key_t (file (read open)))", "neverallow check failed"},
		{"superpowered container reads the recovery key", "(allow super_t recovery_key_t (file (read open)))", "neverallow check failed"},
		{"console reads the recovery key", "(allow console_t recovery_key_t (file (read)))", "neverallow check failed"},
		{"system init makes a recovery key", "(allow init_t recovery_key_t (file (create write)))", "neverallow check failed"},
		{"API server rewrites the recovery key", "(allow api_t recovery_key_t (file (write)))", "neverallow check failed"},
		{"service forges the boot record", "(allow netconf_t boot_security_t (file (write)))", "neverallow check failed"},
		{"API server rewrites the boot record", "(allow api_t boot_security_t (file (create)))", "neverallow check failed"},
		{"unknown type", `(filecon "/x" file (system_u object_r no_such_t low))`, "Failed to resolve filecon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(t, true, tc.extra)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
