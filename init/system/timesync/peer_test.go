package timesync

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/tests/ntpserver"
	"github.com/ballast-os/ballast/tests/testutil"
)

// shiftedClock is the host's clock plus an error that steps and slews correct, so a test can
// discipline "the clock" over a real network without touching the host's.
type shiftedClock struct {
	mu    sync.Mutex
	err   time.Duration
	steps []time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.err)
}

func (c *shiftedClock) Step(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err += d
	c.steps = append(c.steps, d)
	return nil
}

func (c *shiftedClock) Slew(offset, _, _, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err += offset
	return nil
}

// The client against a real server over real UDP, found by name through the system resolver:
// "localhost" has an IPv6 address too, where nothing answers.
func TestAgainstServer(t *testing.T) {
	srv, err := ntpserver.Listen("127.0.0.1:0", ntpserver.Answer{Offset: 3 * time.Second, Stratum: 3, RefID: [4]byte{192, 0, 2, 9},
		RootDelay: 4 * time.Millisecond, RootDispersion: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	clock := &shiftedClock{}
	out := &testutil.Buffer{}
	s := New(Config{
		Servers:        []string{"localhost"},
		Port:           srv.Addr().(*net.UDPAddr).Port,
		SampleInterval: 50 * time.Millisecond,
		Timeout:        time.Second,
		Clock:          clock,
		Console:        &console.Writer{Out: out, Uptime: func() float64 { return 7 }},
	})
	ctx := context.Background()

	s.Poll(ctx)
	st := s.Status()
	if len(clock.steps) != 1 || !approx(clock.steps[0], 3*time.Second, 20*time.Millisecond) || st.State != contract.TimeSynced {
		t.Fatalf("first poll: steps %v, status %+v", clock.steps, st)
	}
	s.Poll(ctx)
	st = s.Status()
	ls := st.LastSync
	if len(clock.steps) != 1 || ls == nil || ls.OffsetSeconds > 0.02 || ls.OffsetSeconds < -0.02 {
		t.Fatalf("second poll: steps %v, last sync %+v", clock.steps, ls)
	}
	if ls.Server != "localhost" || ls.Address != srv.Addr().String() || ls.Stratum != 3 || ls.ReferenceID != "192.0.2.9" ||
		ls.DelaySeconds <= 0 || ls.DelaySeconds > 0.1 || ls.RootDistanceSeconds < 0.004 {
		t.Errorf("last sync %+v", ls)
	}
	if n := srv.Requests(); n != 2*DefaultSamples {
		t.Errorf("the server got %d requests, want %d", n, 2*DefaultSamples)
	}
	// The offset is measured over real UDP, so it is a few microseconds either side of 3 s.
	if m := regexp.MustCompile(`\[  7\.000000\] ballast: time stepped by \+([0-9.]+)s from localhost`).FindStringSubmatch(out.String()); m == nil {
		t.Errorf("console lacks the step line:\n%s", out)
	} else if f, err := strconv.ParseFloat(m[1], 64); err != nil || f < 2.98 || f > 3.02 {
		t.Errorf("console step %q, want about 3 s", m[1])
	}
	for _, want := range []string{"ballast: time synced with localhost (" + srv.Addr().String() + ") stratum=3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}

	srv.Set(ntpserver.Answer{Kiss: "DENY"})
	s.Poll(ctx)
	if st := s.Status(); st.State != contract.TimeError || !strings.Contains(st.Error, "kiss-o'-death DENY") || st.LastSync.OffsetSeconds != ls.OffsetSeconds {
		t.Errorf("after DENY: %+v", st)
	}
}
