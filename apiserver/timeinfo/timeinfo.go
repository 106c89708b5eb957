// Package timeinfo answers GET /time: the state the time service writes (contract.TimeState), the
// clock, and the kernel's synchronisation status.
package timeinfo

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
)

// Sources says where to read from. The zero value reads the running host.
type Sources struct {
	State  string                               // default contract.TimeState
	Now    func() time.Time                     // default time.Now
	Kernel func() (apitypes.KernelClock, error) // default Adjtimex
}

// Read returns the time status. A missing state file is the unknown state, not an error.
func Read(src Sources) (apitypes.Time, error) {
	if src.State == "" {
		src.State = contract.TimeState
	}
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Kernel == nil {
		src.Kernel = Adjtimex
	}
	var t apitypes.Time
	b, err := os.ReadFile(src.State)
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.TimeStatus = contract.TimeStatus{State: apitypes.TimeUnknown, Servers: []string{},
			Error: "the time service has written no state: this image does not run it, or it has not started"}
	case err != nil:
		return apitypes.Time{}, fmt.Errorf("time state: %w", err)
	default:
		if err := json.Unmarshal(b, &t.TimeStatus); err != nil {
			return apitypes.Time{}, fmt.Errorf("time state %s: %w", src.State, err)
		}
	}
	if t.Kernel, err = src.Kernel(); err != nil {
		return apitypes.Time{}, err
	}
	t.Clock = src.Now()
	return t, nil
}

// Adjtimex asks the kernel about its clock without changing anything, which needs no privilege.
func Adjtimex() (apitypes.KernelClock, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return apitypes.KernelClock{}, fmt.Errorf("adjtimex: %w", err)
	}
	return kernelClock(tx, state), nil
}

func kernelClock(tx unix.Timex, state int) apitypes.KernelClock {
	return apitypes.KernelClock{
		Synchronised:    state != unix.TIME_ERROR,
		MaxErrorSeconds: float64(tx.Maxerror) / 1e6,
		EstErrorSeconds: float64(tx.Esterror) / 1e6,
		// Freq is in ppm with a 16-bit binary fraction.
		FrequencyPPM: float64(tx.Freq) / 65536,
	}
}
