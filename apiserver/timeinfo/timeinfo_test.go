package timeinfo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 5, 1, 8, 0, 0, 123, time.UTC)
	kernel := apitypes.KernelClock{Synchronised: true, MaxErrorSeconds: 0.02}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	synced := write("synced.json", `{"state":"synced","servers":["ntp.test"],"last_sync":{"server":"ntp.test","address":"10.0.3.1:123",
		"stratum":2,"reference_id":"GPS","offset_seconds":0.001,"delay_seconds":0.002,"jitter_seconds":0,"root_distance_seconds":0.01,
		"time":"2026-05-01T07:59:50Z"},"poll_seconds":64,"updated":"2026-05-01T07:59:50Z","future_field":1}`)
	tests := []struct {
		name, state string
		kernelErr   error
		want        string // state, or the error
	}{
		{"synced", synced, nil, contract.TimeSynced},
		{"no state file", filepath.Join(dir, "none.json"), nil, apitypes.TimeUnknown},
		{"malformed", write("bad.json", `{"state":`), nil, "time state " + filepath.Join(dir, "bad.json")},
		{"kernel fails", synced, errors.New("adjtimex: no"), "adjtimex: no"},
	}
	for _, tt := range tests {
		got, err := Read(Sources{State: tt.state, Now: func() time.Time { return now },
			Kernel: func() (apitypes.KernelClock, error) { return kernel, tt.kernelErr }})
		if err != nil {
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
			}
			continue
		}
		if got.State != tt.want || !got.Clock.Equal(now) || got.Kernel != kernel || got.Servers == nil {
			t.Errorf("%s: %+v", tt.name, got)
		}
		if tt.want == contract.TimeSynced && (got.LastSync == nil || got.LastSync.Stratum != 2 || got.PollSeconds != 64) {
			t.Errorf("%s: last sync %+v", tt.name, got.LastSync)
		}
	}
}

func TestKernelClock(t *testing.T) {
	tests := []struct {
		tx    unix.Timex
		state int
		want  apitypes.KernelClock
	}{
		{unix.Timex{Status: unix.STA_UNSYNC, Maxerror: 16_000_000, Esterror: 16_000_000}, unix.TIME_ERROR,
			apitypes.KernelClock{MaxErrorSeconds: 16, EstErrorSeconds: 16}},
		{unix.Timex{Status: unix.STA_PLL, Maxerror: 25_000, Esterror: 500, Freq: -12 << 16}, unix.TIME_OK,
			apitypes.KernelClock{Synchronised: true, MaxErrorSeconds: 0.025, EstErrorSeconds: 0.0005, FrequencyPPM: -12}},
		{unix.Timex{Status: unix.STA_PLL | unix.STA_INS}, unix.TIME_INS, apitypes.KernelClock{Synchronised: true}},
	}
	for _, tt := range tests {
		if got := kernelClock(tt.tx, tt.state); got != tt.want {
			t.Errorf("kernelClock(%+v, %d) = %+v, want %+v", tt.tx, tt.state, got, tt.want)
		}
	}
	// The host's own clock can always be read, without privileges.
	if _, err := Adjtimex(); err != nil {
		t.Error(err)
	}
}
