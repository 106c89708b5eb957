// Command probe is the container escape suite's probe: it runs inside a container and reports,
// for each escape vector, whether the container blocks it. See package escape for the report.
//
//	probe [--sleep] [--suid /probe-suid] [--skip vector,...] [--peer-wait 10s]
//go:build linux

package main

import (
	"os"

	"github.com/ballast-os/ballast/tests/escape"
)

func main() {
	os.Exit(escape.Main(os.Args[1:], os.Stdout, os.Stderr))
}
