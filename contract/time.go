package contract

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"time"
)

// The time service (timesync) and the apiserver share two files. The apiserver renders TimeConfig
// from settings.ntp; the time service reads it at start (a change restarts it):
//
//	# comment
//	server <host name or address>
//
// one server a line, in order of preference; no file or no server lines means no servers. The time
// service writes its state to TimeState (a TimeStatus, replaced atomically) whenever it changes,
// and GET /time serves it.

// TimeConfigFile is the content of TimeConfig.
type TimeConfigFile struct {
	Servers []string
}

// ParseTimeConfig reads TimeConfig; an error names the line (the caller names the file).
func ParseTimeConfig(b []byte) (TimeConfigFile, error) {
	var c TimeConfigFile
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] != "server" || len(f) != 2 {
			return TimeConfigFile{}, fmt.Errorf("line %d: want \"server <host>\", got %q", n, line)
		}
		c.Servers = append(c.Servers, f[1])
	}
	if err := sc.Err(); err != nil {
		return TimeConfigFile{}, err
	}
	return c, nil
}

// States of the time service (TimeStatus.State).
const (
	TimeUnconfigured = "unconfigured" // no servers: the clock is left alone
	TimeSyncing      = "syncing"      // servers configured, no usable answer yet
	TimeSynced       = "synced"       // the clock follows LastSync's server
	TimeError        = "error"        // the last poll found no usable server (Error says why)
)

// TimeStatus is TimeState: what the time service last did. Seconds are float64 so that clients
// need no duration syntax; offsets are the server's clock minus the local clock.
type TimeStatus struct {
	State   string   `json:"state"`
	Error   string   `json:"error,omitempty"`
	Servers []string `json:"servers"` // as configured
	// LastSync is the last measurement the clock was corrected from; it stays when later polls fail.
	LastSync *TimeSync `json:"last_sync,omitempty"`
	// LastStep is the last time the clock was stepped instead of slewed.
	LastStep    *TimeStep  `json:"last_step,omitempty"`
	PollSeconds float64    `json:"poll_seconds,omitempty"` // the current poll interval
	NextPoll    *time.Time `json:"next_poll,omitempty"`
	Updated     time.Time  `json:"updated"` // when this state was written
}

// TimeSync is one measurement of a server that the clock was corrected from.
type TimeSync struct {
	Server              string    `json:"server"`  // as configured
	Address             string    `json:"address"` // the address that answered, host:port
	Stratum             int       `json:"stratum"`
	ReferenceID         string    `json:"reference_id"`
	OffsetSeconds       float64   `json:"offset_seconds"`
	DelaySeconds        float64   `json:"delay_seconds"`
	JitterSeconds       float64   `json:"jitter_seconds"`
	RootDistanceSeconds float64   `json:"root_distance_seconds"`
	Time                time.Time `json:"time"` // when it was taken, by the corrected clock
}

// TimeStep is a step of the clock.
type TimeStep struct {
	Time    time.Time `json:"time"` // just after the step
	Seconds float64   `json:"seconds"`
}
