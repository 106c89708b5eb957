package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/updates/tufrepo"
	"github.com/ballast-os/ballast/updates/tufrepo/repotest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runRepo(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRepoUsageErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := run(t, "init", dir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: ballast repo init"},
		{[]string{"publish", dir}, `unknown command "publish"`},
		{[]string{"init"}, "no repository directory given"},
		{[]string{"init", dir, "--threshold", "3", "--keys", "2"}, "want 1 <= threshold <= keys"},
		{[]string{"init", dir, "--expires", "mirror=1h"}, "--expires"},
		{[]string{"add", dir}, "--build is required"},
		{[]string{"add", dir, "--build", "b", "--waves", "3000@+1h"}, "--waves"},
		{[]string{"add", dir, "--build", "b", "--max-version", "new"}, "--max-version"},
		{[]string{"sign", dir, "extra"}, `unexpected argument "extra"`},
		{[]string{"refresh", dir, "--timestamp-expires", "soon"}, "invalid value"},
		{[]string{"expire", dir, "--role", "timestamp"}, "--role and --at are required"},
		{[]string{"expire", dir, "--role", "mirror", "--at", "+1h"}, `--role "mirror"`},
		{[]string{"expire", dir, "--role", "timestamp", "--at", "tomorrow"}, "want an RFC 3339 time"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "usage: ballast repo") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q with the usage", tc.args, code, stderr, tc.want)
		}
	}
	// Errors that are not the command line's: exit 1, no usage.
	code, _, stderr := run(t, "init", dir)
	if code != 1 || !strings.Contains(stderr, "already there") || strings.Contains(stderr, "usage:") {
		t.Errorf("init twice: exit %d, %q", code, stderr)
	}
	code, _, stderr = run(t, "add", dir, "--build", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "no update payload") {
		t.Errorf("add of a directory without a payload: exit %d, %q", code, stderr)
	}
}

func TestRepoCommands(t *testing.T) {
	tmp := t.TempDir()
	dir, build := filepath.Join(tmp, "repo"), filepath.Join(tmp, "build", "qemu")
	code, stdout, stderr := run(t, "init", dir, "--keys", "2", "--threshold", "2", "--expires", "timestamp=12h")
	if code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	abs, _ := filepath.Abs(tufrepo.RootPath(dir))
	if !strings.Contains(stdout, "trusted root: "+abs) || !strings.Contains(stdout, "2/2") {
		t.Errorf("init output:\n%s", stdout)
	}
	if _, err := repotest.Build(build, repotest.Spec{Version: "1.2.0", DatastoreFormat: 1}); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(tmp, "NOTES")
	os.WriteFile(notes, []byte("Fixes everything.\n"), 0o644)
	// Flags before the directory work too.
	code, stdout, stderr = run(t, "add", "--build", build, "--notes", notes, "--waves", "0@+0h,1024@+4h,2047@+24h", "--max-version", "1.2.0", dir)
	if code != 0 {
		t.Fatalf("add: %s", stderr)
	}
	if !strings.Contains(stdout, "added qemu 1.2.0") || strings.Count(stdout, "wave:") != 3 {
		t.Errorf("add output:\n%s", stdout)
	}
	m, err := tufrepo.Manifest(dir, "qemu", "")
	if err != nil {
		t.Fatal(err)
	}
	r := m.Release("1.2.0")
	if r == nil || r.Notes != "Fixes everything.\n" || len(r.Waves) != 3 || m.MaxVersion != "1.2.0" {
		t.Fatalf("manifest: %+v", m)
	}
	if d := r.Waves[1].Start.Sub(r.Released); d < 4*time.Hour-time.Minute || d > 4*time.Hour+time.Minute {
		t.Errorf("second wave starts %v after the release", d)
	}
	if code, _, stderr = run(t, "refresh", dir, "--timestamp-expires", "2h"); code != 0 {
		t.Fatalf("refresh: %s", stderr)
	}
	code, stdout, _ = run(t, "expire", dir, "--role", "timestamp", "--at", "-1h")
	if code != 0 || !strings.Contains(stdout, "warning: timestamp expired") || !strings.Contains(stdout, "3.snapshot.json") {
		t.Errorf("expire: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = run(t, "expire", dir, "--role", "targets", "--at", time.Now().Add(240*time.Hour).UTC().Format(time.RFC3339))
	if code != 0 || !strings.Contains(stdout, "3.targets.json") || !strings.Contains(stdout, "4.snapshot.json") || strings.Contains(stdout, "warning") {
		t.Errorf("expire targets: exit %d\n%s", code, stdout)
	}
	// One timestamp key leaves: a refresh is short of a signature until its holder signs.
	away := filepath.Join(tmp, "timestamp-2.pem")
	os.Rename(filepath.Join(dir, tufrepo.KeysDir, "timestamp-2.pem"), away)
	code, stdout, _ = run(t, "refresh", dir)
	if code != 0 || !strings.Contains(stdout, "warning: timestamp has 1 of the 2 signatures") {
		t.Errorf("refresh with one timestamp key: exit %d\n%s", code, stdout)
	}
	os.Rename(away, filepath.Join(dir, tufrepo.KeysDir, "timestamp-2.pem"))
	code, stdout, _ = run(t, "sign", dir)
	if code != 0 || strings.Contains(stdout, "warning") {
		t.Errorf("sign: exit %d\n%s", code, stdout)
	}
	if code, stdout, _ = run(t, "status", dir); code != 0 || strings.Count(stdout, "2/2") != 4 {
		t.Errorf("status: exit %d\n%s", code, stdout)
	}
}
