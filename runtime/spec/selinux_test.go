package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/builder/sepolicy"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/mcs"
	"github.com/ballast-os/ballast/tests/testutil"
)

// contexts reads CRISELinuxContexts as go-selinux does (key = "value" lines, # comments).
func contexts(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(CRISELinuxContexts()))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("contexts line %q", line)
		}
		m[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return m
}

// compileWith compiles selinux/policy with one more CIL file.
func compileWith(t *testing.T, extra string) error {
	t.Helper()
	testutil.Tool(t, "secilc", "secilc")
	src := filepath.Join(testutil.RepoRoot(t), "selinux", "policy")
	dir := t.TempDir()
	m, _ := filepath.Glob(filepath.Join(src, "*.cil"))
	for _, f := range m {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "zz-check.cil"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	_, err := sepolicy.Compile(t.Context(), sepolicy.Options{Dir: dir, Programs: contract.Programs(), Work: work})
	return err
}

// The labels CRI gives pods exist in the policy at the levels go-selinux allocates (below
// mcs.PodCategories), and the policy keeps pods and host containers apart whatever their levels.
func TestCRISELinuxContexts(t *testing.T) {
	c := contexts(t)
	want := map[string]string{
		"process": "system_u:system_r:" + PodType + ":s0",
		"file":    "system_u:object_r:" + PodFile + ":s0",
		"ro_file": "system_u:object_r:" + PodFile + ":s0",
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %q, want %q", k, c[k], v)
		}
	}
	// CIL context statements of the labels at the highest pair a pod can get: secilc refuses a
	// user, role, type or category the policy does not declare, or a role the type is not in.
	lvl := fmt.Sprintf("(s0 (c%d c%d))", mcs.PodCategories-2, mcs.PodCategories-1)
	var cil strings.Builder
	for i, k := range []string{"process", "file"} {
		f := strings.Split(c[k], ":")
		fmt.Fprintf(&cil, "(context zzcheck%d (%s %s %s (%s %s)))\n", i, f[0], f[1], f[2], lvl, lvl)
		fmt.Fprintf(&cil, "(filecon \"/zz-check-%d\" file zzcheck%d)\n", i, i)
	}
	// The pod policy's binary leads into its service domain (contract.PodPolicyPath).
	fmt.Fprintf(&cil, "(filecon %q file (system_u object_r podpolicy_exec_t low))\n", contract.PodPolicyPath)
	if err := compileWith(t, cil.String()); err != nil {
		t.Fatalf("the pods' labels: %v\n%s", err, cil.String())
	}
	for _, rule := range []string{
		"(allow pod_t container_file_t (file (read open)))",
		"(allow container_t pod_file_t (file (read open)))",
	} {
		if err := compileWith(t, rule); err == nil || !strings.Contains(err.Error(), "neverallow check failed") {
			t.Errorf("%s: %v, want a neverallow failure", rule, err)
		}
	}
}
