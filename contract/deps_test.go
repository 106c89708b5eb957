package contract

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages of the module that pkgs import, directly or not.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// The shape this package promises: it is a leaf (the standard library only), and PID 1 and the
// initramfs reach the API server through it, never by linking the API server's packages.
func TestDependencies(t *testing.T) {
	for _, d := range deps(t, ".") {
		if d != "github.com/ballast-os/ballast/contract" {
			t.Errorf("contract imports %s: it must import the standard library only", d)
		}
	}
	for _, d := range deps(t, "../init/...") {
		if strings.HasPrefix(d, "github.com/ballast-os/ballast/apiserver") || strings.HasPrefix(d, "github.com/ballast-os/ballast/builder") {
			t.Errorf("the inits link %s", d)
		}
	}
}
