// Command modprobe is Ballast's module loader (package modprobe), at contract.ModprobePath.
package main

import (
	"io"
	"os"

	"github.com/ballast-os/ballast/init/modprobe"
)

func main() {
	// The kernel starts its helper without a terminal; the kernel log is where a refusal is seen.
	// fmt writes each line in one write(2), which is how /dev/kmsg wants its records.
	var log io.Writer = io.Discard
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		log = f
	}
	os.Exit(modprobe.Run(os.Args[1:], modprobe.Options{Log: log, Stderr: os.Stderr}))
}
