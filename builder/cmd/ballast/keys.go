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

	"github.com/ballast-os/ballast/trust/sbkeys"
)

const keysUsage = `usage: ballast keys init DIR [--name NAME]

Makes the owner's UEFI Secure Boot keys in DIR (a new directory, or one without keys): PK, KEK
and db keys with their certificates, signature lists (.esl) and the signed variable updates
(.auth) systemd-boot enrolls from the ESP when the firmware is in setup mode, and pcr.key, which
signs the expected TPM PCR 11 policies. DIR/README.txt says which files builds need.

--name   the owner named in the certificates, "NAME PK", "NAME KEK", "NAME db"
         (default "Ballast")
`

// keysMain runs `ballast keys ARGS` and exits with its status. It has the shape of the other
// commands' entries so that main's table of commands can take it.
func keysMain(args []string) {
	os.Exit(runKeys(args, os.Stdout, os.Stderr))
}

// runKeys runs `ballast keys ARGS` and returns the exit status: 2 for command-line mistakes.
func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "init":
		err = keysInit(rest, stdout, stderr, time.Now())
	default:
		err = usageErr("unknown command %q: want init", cmd)
	}
	return exitCode("keys", cmd, keysUsage, err, stderr)
}

func keysInit(args []string, stdout, stderr io.Writer, now time.Time) error {
	fs := newFlags("init", stderr)
	name := fs.String("name", "Ballast", "owner named in the certificates")
	// DIR may come before or after the flags.
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	rest := fs.Args()
	if dir == "" && len(rest) > 0 {
		dir, rest = rest[0], rest[1:]
	}
	switch {
	case dir == "":
		return usageErr("no key directory given")
	case len(rest) > 0:
		return usageErr("unexpected argument %q", rest[0])
	case strings.TrimSpace(*name) == "":
		return usageErr("--name is empty")
	}
	if err := sbkeys.Init(dir, *name, now); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	fmt.Fprintf(stdout, `made Secure Boot keys for %q in %s
builds need only %s, %s, %s and the .auth files (%s, %s, %s).
Move %s and %s offline now: whoever holds them controls what every enrolled machine trusts.
%s says how to re-make the .auth files with them.
`, *name, abs, sbkeys.DBKey, sbkeys.DBCert, sbkeys.PCRKey, sbkeys.PKAuth, sbkeys.KEKAuth, sbkeys.DBAuth,
		filepath.Join(abs, sbkeys.PKKey), filepath.Join(abs, sbkeys.KEKKey), filepath.Join(abs, sbkeys.Readme))
	return nil
}
