package image

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/tests/qemu"
)

// allowListFile lists the SELinux denials the image tests accept, one regular expression per
// line matched against the denial's text, each with the reason after " # ".
const allowListFile = "testdata/avc-allowlist.txt"

// startVM starts a guest; when the test ends, every SELinux denial its console shows (the system
// init prints each one) fails the test unless the allow-list names it with a reason.
func startVM(t testing.TB, cfg qemu.Config) (*qemu.VM, error) {
	t.Helper()
	vm, err := qemu.Start(t.Context(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if bad := unexpectedDenials(t, vm.Console()); len(bad) > 0 {
			t.Errorf("SELinux denials outside %s:\n%s", allowListFile, strings.Join(bad, "\n"))
		}
	})
	return vm, nil
}

type allowed struct {
	re     *regexp.Regexp
	reason string
}

func loadAllowList(path string) ([]allowed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []allowed
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		expr, reason, ok := strings.Cut(line, " # ")
		if !ok || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: no reason (\"REGEXP # why it is accepted\")", path, n)
		}
		re, err := regexp.Compile(strings.TrimSpace(expr))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, allowed{re, reason})
	}
	return out, sc.Err()
}

// denialRE matches the system init's console line for a denial, and its line for the ones it
// stopped printing one by one.
var denialRE = regexp.MustCompile(`selinux: .*avc:\s+denied|selinux: \d+ denials so far`)

// unexpectedDenials returns the console's denial lines the allow-list does not accept.
func unexpectedDenials(t testing.TB, console string) []string {
	list, err := loadAllowList(allowListFile)
	if err != nil {
		t.Errorf("allow-list: %v", err)
	}
	var bad []string
	for _, line := range strings.Split(console, "\n") {
		if !denialRE.MatchString(line) {
			continue
		}
		ok := false
		for _, a := range list {
			if a.re.MatchString(line) {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	return bad
}

func TestAllowListParses(t *testing.T) {
	if _, err := loadAllowList(allowListFile); err != nil {
		t.Fatal(err)
	}
	console := "ballast: error: selinux: audit: type=1400 audit(1.2:3): avc:  denied  { read } for pid=1 comm=\"x\" scontext=system_u:system_r:container_t:s0:c1,c2 tcontext=system_u:object_r:local_t:s0 tclass=dir permissive=0\nother line\n"
	if bad := unexpectedDenials(t, console); len(bad) != 1 {
		t.Fatalf("a denial outside the allow-list was not reported: %q", bad)
	}
}
