package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/trust/sbkeys"
)

func runKeysArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runKeys(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestKeysInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	code, stdout, stderr := runKeysArgs("init", dir, "--name", "Example Co")
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	for _, want := range []string{dir, "offline", sbkeys.PKKey, sbkeys.KEKKey, "README.txt"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("init output lacks %q:\n%s", want, stdout)
		}
	}
	k, err := sbkeys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cn := k.DBCert.Subject.CommonName; cn != "Example Co db" {
		t.Errorf("db certificate for %q", cn)
	}
	// Not the command line's fault: exit 1, no usage.
	code, _, stderr = runKeysArgs("init", dir)
	if code != 1 || !strings.Contains(stderr, "refusing to overwrite") || strings.Contains(stderr, "usage:") {
		t.Errorf("init twice: exit %d, %q", code, stderr)
	}
}

func TestKeysUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: ballast keys init"},
		{[]string{"rotate"}, `unknown command "rotate"`},
		{[]string{"init"}, "no key directory given"},
		{[]string{"init", "a", "b"}, `unexpected argument "b"`},
		{[]string{"init", "a", "--name", ""}, "--name is empty"},
		{[]string{"init", "a", "--bits", "4096"}, "flag provided but not defined"},
	} {
		code, _, stderr := runKeysArgs(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "usage: ballast keys") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q with the usage", tc.args, code, stderr, tc.want)
		}
	}
}
