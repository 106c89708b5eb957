package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ballast-os/ballast/updates/manifest"
	"github.com/ballast-os/ballast/updates/tufrepo"
)

const repoUsage = `usage: ballast repo init DIR [--keys N] [--threshold T] [--expires ROLE=DURATION,...]
       ballast repo add DIR --build BUILD [--notes FILE] [--waves SPEC] [--max-version V]
       ballast repo sign DIR
       ballast repo refresh DIR [--timestamp-expires 24h] [--snapshot-expires 168h]
       ballast repo expire DIR --role ROLE --at TIME
       ballast repo status DIR

Maintains the static TUF update repository in DIR. Publish DIR/repository only (metadata/ and
targets/, timestamp.json last); DIR/keys holds the private keys. A variant's [updates] root
points at DIR/repository/metadata/root.json, the trusted root its images carry.

init     makes N ed25519 keys per role (default 1) needing T signatures (default 1), and signed
         metadata. --expires sets validity periods, e.g. root=8760h,targets=8760h,snapshot=168h,
         timestamp=24h (the defaults).
add      publishes BUILD (a build directory such as build/qemu, with update/payload.json) as a
         release of its variant, with the release notes in FILE ("-" for standard input) and a
         wave schedule: SEEDS@WHEN pairs, WHEN an offset from now or an RFC 3339 time, e.g.
         "0@+0h,1024@+4h,2047@+24h" (no --waves: every host at once). --max-version caps the
         versions hosts take.
sign     adds the signatures of the keys in DIR/keys to every role (thresholds above 1: each
         key holder signs in turn); versions do not change.
refresh  publishes new snapshot and timestamp versions; run it before the timestamp expires.
expire   publishes a new version of ROLE (root, targets, snapshot, timestamp) expiring at TIME,
         an RFC 3339 time or an offset from now (+720h, -1h).
status   prints every role's version, expiry and signatures.
`

func repoMain(args []string) {
	os.Exit(runRepo(args, os.Stdout, os.Stderr))
}

// errUsage marks errors that are the command line's fault (exit status 2).
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

// exitCode reports err of "ballast <group> <cmd>" on stderr and returns the exit status: 2 with
// the usage for a command-line mistake, 0 for --help, 1 for any other error.
func exitCode(group, cmd, usage string, err error, stderr io.Writer) int {
	var ue errUsage
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ballast %s %s: %s\n\n%s", group, cmd, ue.msg, usage)
		return 2
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "ballast %s %s: %v\n", group, cmd, err)
		return 1
	}
	return 0
}

func usageErr(format string, a ...any) error { return errUsage{fmt.Sprintf(format, a...)} }

// runRepo runs `ballast repo ARGS` and returns the exit status.
func runRepo(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, repoUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	var dir string
	var err error
	switch cmd {
	case "init":
		dir, err = repoInit(rest, stdout, stderr)
	case "add":
		dir, err = repoAdd(rest, stdout, stderr)
	case "sign":
		dir, err = repoSimple("sign", rest, stderr, tufrepo.Sign)
	case "refresh":
		dir, err = repoRefresh(rest, stderr)
	case "expire":
		dir, err = repoExpire(rest, stderr)
	case "status":
		dir, err = repoSimple("status", rest, stderr, func(string) error { return nil })
	default:
		err = usageErr("unknown command %q: want init, add, sign, refresh, expire or status", cmd)
	}
	if err == nil {
		err = printStatus(dir, stdout)
	}
	return exitCode("repo", cmd, repoUsage, err, stderr)
}

// parseDir parses flags given before or after the one DIR argument.
func parseDir(fs *flag.FlagSet, args []string) (string, error) {
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", usageErr("%v", err)
	}
	rest := fs.Args()
	if dir == "" && len(rest) > 0 {
		dir, rest = rest[0], rest[1:]
	}
	if dir == "" {
		return "", usageErr("no repository directory given")
	}
	if len(rest) > 0 {
		return "", usageErr("unexpected argument %q", rest[0])
	}
	return dir, nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

func repoInit(args []string, stdout, stderr io.Writer) (string, error) {
	fs := newFlags("init", stderr)
	keys := fs.Int("keys", 1, "keys per role")
	threshold := fs.Int("threshold", 1, "signatures each role needs")
	expires := fs.String("expires", "", "validity periods, ROLE=DURATION,...")
	dir, err := parseDir(fs, args)
	if err != nil {
		return "", err
	}
	if *keys < 1 || *threshold < 1 || *threshold > *keys {
		return "", usageErr("--keys %d --threshold %d: want 1 <= threshold <= keys", *keys, *threshold)
	}
	exp, err := tufrepo.ParseExpiry(*expires)
	if err != nil {
		return "", usageErr("--expires: %v", err)
	}
	if err := tufrepo.Init(dir, tufrepo.Options{Keys: *keys, Threshold: *threshold, Expiry: exp}); err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "initialized %s: %d key(s) per role, threshold %d; private keys in %s\n", dir, *keys, *threshold, filepath.Join(dir, tufrepo.KeysDir))
	return dir, nil
}

func repoAdd(args []string, stdout, stderr io.Writer) (string, error) {
	fs := newFlags("add", stderr)
	build := fs.String("build", "", "build directory (with update/payload.json)")
	notesFile := fs.String("notes", "", "release notes file")
	wavesSpec := fs.String("waves", "", "wave schedule")
	maxVersion := fs.String("max-version", "", "newest version hosts may take")
	dir, err := parseDir(fs, args)
	if err != nil {
		return "", err
	}
	if *build == "" {
		return "", usageErr("--build is required (a build directory such as build/qemu)")
	}
	waves, err := manifest.ParseWaves(*wavesSpec, time.Now())
	if err != nil {
		return "", usageErr("--waves: %v", err)
	}
	if *maxVersion != "" {
		if _, err := manifest.ParseVersion(*maxVersion); err != nil {
			return "", usageErr("--max-version: %v", err)
		}
	}
	var notes []byte
	switch *notesFile {
	case "":
	case "-":
		notes, err = io.ReadAll(os.Stdin)
	default:
		notes, err = os.ReadFile(*notesFile)
	}
	if err != nil {
		return "", fmt.Errorf("release notes: %w", err)
	}
	rel, err := tufrepo.Add(dir, *build, string(notes), waves, *maxVersion)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "added %s %s (%s) as %s\n", rel.Payload.Variant, rel.Version, rel.Arch, manifest.TargetName(rel.Payload.Variant, rel.Arch))
	for _, w := range rel.Waves {
		fmt.Fprintf(stdout, "  wave: seeds up to %d from %s\n", w.Seeds, w.Start.Format(time.RFC3339))
	}
	for _, m := range rel.Migrations {
		fmt.Fprintf(stdout, "  migration: %s\n", m)
	}
	return dir, nil
}

func repoSimple(name string, args []string, stderr io.Writer, run func(dir string) error) (string, error) {
	dir, err := parseDir(newFlags(name, stderr), args)
	if err != nil {
		return "", err
	}
	return dir, run(dir)
}

func repoRefresh(args []string, stderr io.Writer) (string, error) {
	fs := newFlags("refresh", stderr)
	ts := fs.Duration("timestamp-expires", 0, "timestamp validity (default: as at init)")
	snap := fs.Duration("snapshot-expires", 0, "snapshot validity (default: as at init)")
	dir, err := parseDir(fs, args)
	if err != nil {
		return "", err
	}
	if *ts < 0 || *snap < 0 {
		return "", usageErr("expiry periods must be positive")
	}
	return dir, tufrepo.Refresh(dir, *ts, *snap)
}

func repoExpire(args []string, stderr io.Writer) (string, error) {
	fs := newFlags("expire", stderr)
	role := fs.String("role", "", "root, targets, snapshot or timestamp")
	at := fs.String("at", "", "RFC 3339 time or offset from now")
	dir, err := parseDir(fs, args)
	if err != nil {
		return "", err
	}
	if *role == "" || *at == "" {
		return "", usageErr("--role and --at are required")
	}
	var when time.Time
	if strings.HasPrefix(*at, "+") || strings.HasPrefix(*at, "-") {
		d, err := time.ParseDuration(*at)
		if err != nil {
			return "", usageErr("--at %q: %v", *at, err)
		}
		when = time.Now().Add(d).UTC().Truncate(time.Second)
	} else if when, err = time.Parse(time.RFC3339, *at); err != nil {
		return "", usageErr("--at %q: want an RFC 3339 time (2025-06-01T00:00:00Z) or an offset (+24h)", *at)
	}
	found := false
	for _, r := range tufrepo.Roles {
		found = found || r == *role
	}
	if !found {
		return "", usageErr("--role %q: want one of %s", *role, strings.Join(tufrepo.Roles, ", "))
	}
	return dir, tufrepo.Expire(dir, *role, when)
}

// printStatus shows every role and where the trusted root is, and warns about roles short of
// signatures or close to expiry.
func printStatus(dir string, w io.Writer) error {
	st, err := tufrepo.Status(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	fmt.Fprintf(w, "%-10s %-8s %-20s %-22s %s\n", "ROLE", "VERSION", "FILE", "EXPIRES", "SIGNATURES")
	var warn []string
	for _, s := range st {
		fmt.Fprintf(w, "%-10s %-8d %-20s %-22s %d/%d (keys here: %d)\n", s.Role, s.Version, s.File, s.Expires.UTC().Format(time.RFC3339), s.Signatures, s.Threshold, s.KeysHere)
		if !s.Signed() {
			warn = append(warn, fmt.Sprintf("%s has %d of the %d signatures it needs: run `ballast repo sign %s` where the other %s keys are", s.Role, s.Signatures, s.Threshold, dir, s.Role))
		}
		if !s.Expires.After(now) {
			warn = append(warn, fmt.Sprintf("%s expired at %s", s.Role, s.Expires.UTC().Format(time.RFC3339)))
		}
	}
	root, err := filepath.Abs(tufrepo.RootPath(dir))
	if err != nil {
		root = tufrepo.RootPath(dir)
	}
	fmt.Fprintf(w, "trusted root: %s (a variant's [updates] root points at it)\n", root)
	for _, s := range warn {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
	return nil
}
