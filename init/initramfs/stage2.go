package initramfs

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ballast-os/ballast/init/initramfs/blockdev"
)

// InitPath is the initramfs init, which the first stage execs again for the second.
const InitPath = "/init"

// Stage2Arg is the first argument of the second stage. The kernel passes words of its command
// line that hold "=" to init as environment, never as arguments, so the command line cannot ask
// for the second stage.
const Stage2Arg = "--stage=2"

// State is what the first stage hands the second across the exec.
type State struct {
	Data blockdev.Partition // the data partition, found by PARTUUID
}

// Args returns the second stage's arguments, Stage2Arg first.
func (s State) Args() []string {
	return []string{Stage2Arg,
		"--data-dev=" + s.Data.Dev,
		"--data-disk=" + s.Data.Disk,
		"--data-partuuid=" + s.Data.PartUUID,
		fmt.Sprintf("--data-size=%d", s.Data.Size),
	}
}

// IsStage2 reports whether args (without the program name) are the second stage's.
func IsStage2(args []string) bool {
	return len(args) > 0 && args[0] == Stage2Arg
}

// ParseState reads the arguments Args made.
func ParseState(args []string) (State, error) {
	if !IsStage2(args) {
		return State{}, errors.New("stage 2: arguments do not start with " + Stage2Arg)
	}
	var s State
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&s.Data.Dev, "data-dev", "", "")
	fs.StringVar(&s.Data.Disk, "data-disk", "", "")
	fs.StringVar(&s.Data.PartUUID, "data-partuuid", "", "")
	fs.Int64Var(&s.Data.Size, "data-size", 0, "")
	if err := fs.Parse(args[1:]); err != nil {
		return State{}, fmt.Errorf("stage 2: %w", err)
	}
	if s.Data.Dev == "" || s.Data.Disk == "" || s.Data.PartUUID == "" || fs.NArg() > 0 {
		return State{}, fmt.Errorf("stage 2: incomplete arguments %q", args)
	}
	return s, nil
}
