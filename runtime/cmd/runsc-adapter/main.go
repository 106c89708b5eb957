// Command runsc-adapter is the runsc the gVisor shim runs (its binary_name): it drops the SELinux
// process label CRI gives pods, which runsc refuses, then runs runsc with the same arguments
// (runtime/runsclabel).
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/runsclabel"
)

func main() {
	cwd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runsc adapter: %v\n", err)
		os.Exit(1)
	}
	for _, f := range runsclabel.Files(os.Args[1:], cwd) {
		if _, err := runsclabel.DropProcessLabel(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	argv := append([]string{contract.RunscPath}, os.Args[1:]...)
	if err := syscall.Exec(contract.RunscPath, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "runsc adapter: exec %s: %v\n", contract.RunscPath, err)
		os.Exit(1)
	}
}
