// Package modprobe is Ballast's module loader at contract.ModprobePath: the program the kernel
// runs for its own module requests (kernel.modprobe points at it) and the one `modprobe` runs on a
// dev image's console. It loads modules of the image's tree (modules.dep, modules.alias) with
// finit_module(2) and refuses the ones the kernel policy blocks, with a line in the kernel log.
package modprobe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/kmod"
)

// Options connects Run to the machine; zero fields take the defaults in brackets.
type Options struct {
	Root string // where the running system's files are ["/"]
	Kver string // kernel release [uname -r]
	// Log is the kernel log; each line is written whole, "<level>ballast: modprobe: ...".
	Log    io.Writer
	Stderr io.Writer
	// Finit inserts one module file [finit_module(2)].
	Finit func(f *os.File) error
}

// Exit codes, as modprobe(8) uses them.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

const usage = "usage: modprobe [-q] [-v] [--] MODULE (loads MODULE and its dependencies unless the kernel policy blocks one)"

// Run does what `modprobe args...` asks and returns the exit code. The kernel runs
// "modprobe -q -- <name or alias>"; people add -v at most.
func Run(args []string, o Options) int {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	quiet, verbose := false, false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		args = args[1:]
		if a == "--" {
			break
		}
		for _, f := range a[1:] {
			switch f {
			case 'q':
				quiet = true
			case 'v':
				verbose = true
			default:
				fmt.Fprintf(o.Stderr, "modprobe: option %q is not supported\n%s\n", a, usage)
				return ExitUsage
			}
		}
	}
	if len(args) != 1 {
		if len(args) > 1 {
			fmt.Fprintf(o.Stderr, "modprobe: module parameters are not supported (%q)\n", args[1:])
		}
		fmt.Fprintln(o.Stderr, usage)
		return ExitUsage
	}
	request := args[0]
	refuse := func(level int, format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		fmt.Fprintf(o.Log, "<%d>ballast: modprobe: %s\n", level, msg)
		if !quiet || level <= warning {
			fmt.Fprintf(o.Stderr, "modprobe: %s\n", msg)
		}
		return ExitFail
	}

	// Without a readable policy nothing is known to be allowed: fail closed.
	policy, err := contract.ReadKernelPolicy(o.Root)
	if err != nil {
		return refuse(warning, "refused %s: %v", request, err)
	}
	l, err := kmod.New(o.Root, o.Kver)
	if err != nil {
		return refuse(warning, "refused %s: %v", request, err)
	}
	l.Blocked = policy.Blocks
	if o.Finit != nil {
		l.Finit = o.Finit
	}
	names := l.Resolve(request)
	if len(names) == 0 {
		if _, err := os.Stat(filepath.Join(o.Root, "sys/module", contract.ModuleName(request))); err == nil {
			return ExitOK // built in, or loaded already from elsewhere
		}
		return refuse(info, "%s: no such module in this image", request)
	}
	// Of several modules matching one alias, each is tried, as modprobe does.
	failed := 0
	for _, n := range names {
		err := l.Load(n)
		switch {
		case errors.Is(err, kmod.ErrBlocked):
			refuse(warning, "refused %s (requested as %s): %v (settings.kernel.modules.%s.allowed = false)", n, request, err, n)
			failed++
		case err != nil:
			refuse(errLevel, "%s (requested as %s): %v", n, request, err)
			failed++
		case verbose:
			fmt.Fprintf(o.Stderr, "modprobe: loaded %s\n", n)
		}
	}
	if failed == len(names) {
		return ExitFail
	}
	return ExitOK
}

// Kernel log levels (syslog(2)).
const (
	errLevel = 3
	warning  = 4
	info     = 6
)
