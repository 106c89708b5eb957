package timesync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/timesync/ntp"
	"github.com/ballast-os/ballast/tests/testutil"
)

// fakeClock is a system clock whose true time moves only with the fake network's round trips,
// and whose error from the true time only with steps and slews.
type fakeClock struct {
	mu      sync.Mutex
	truth   time.Time
	err     time.Duration // what the clock reads minus the true time
	steps   []time.Duration
	slews   []slewCall
	stepErr error
}

type slewCall struct{ offset, poll, maxErr, estErr time.Duration }

func newFakeClock(err time.Duration) *fakeClock {
	return &fakeClock{truth: time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC), err: err}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.truth.Add(c.err)
}

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.truth = c.truth.Add(d)
	return c.truth
}

func (c *fakeClock) Step(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stepErr != nil {
		return c.stepErr
	}
	c.err += d
	c.steps = append(c.steps, d)
	return nil
}

// Slew corrects at once, as a perfect PLL would have by the next poll.
func (c *fakeClock) Slew(offset, poll, maxErr, estErr time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err += offset
	c.slews = append(c.slews, slewCall{offset, poll, maxErr, estErr})
	return nil
}

// fakeServer answers from the true time plus its offset. Each request takes the next of paths
// (the one-way delays out and back, cycled); without paths answers are instant.
type fakeServer struct {
	offset time.Duration
	paths  [][2]time.Duration
	edit   func(*ntp.Header)
	silent bool

	mu       sync.Mutex
	requests int
}

func (s *fakeServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// fakeNet is the network and resolver of a test.
type fakeNet struct {
	clock   *fakeClock
	names   map[string][]string
	servers map[string]*fakeServer // by address:port
}

func (n *fakeNet) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := n.names[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func (n *fakeNet) Dial(_ context.Context, network, addr string) (net.Conn, error) {
	s, ok := n.servers[addr]
	if network != "udp" || !ok {
		return nil, fmt.Errorf("dial %s %s: network is unreachable", network, addr)
	}
	return &fakeConn{srv: s, clock: n.clock, answers: make(chan []byte, 4), addr: addr}, nil
}

type fakeConn struct {
	net.Conn // the methods Exchange does not use panic
	srv      *fakeServer
	clock    *fakeClock
	addr     string
	answers  chan []byte

	mu       sync.Mutex
	deadline time.Time
}

func (c *fakeConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }
func (c *fakeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}
func (c *fakeConn) RemoteAddr() net.Addr {
	return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.addr))
}
func (c *fakeConn) Close() error { return nil }

func (c *fakeConn) Write(b []byte) (int, error) {
	req, err := ntp.ParseHeader(b)
	if err != nil || req.Mode != ntp.ModeClient {
		return 0, fmt.Errorf("bad request %+v: %v", req, err)
	}
	s := c.srv
	s.mu.Lock()
	var path [2]time.Duration
	if len(s.paths) > 0 {
		path = s.paths[s.requests%len(s.paths)]
	}
	s.requests++
	s.mu.Unlock()
	if s.silent {
		return len(b), nil
	}
	at := c.clock.advance(path[0]).Add(s.offset)
	h := ntp.Header{Version: ntp.Version, Mode: ntp.ModeServer, Stratum: 2, ReferenceID: [4]byte{10, 9, 8, 7},
		RootDelay: 0x0000028f /* 10 ms */, RootDispersion: 0x00000148, /* 5 ms */
		Origin: req.Transmit, Receive: ntp.TimestampOf(at), Transmit: ntp.TimestampOf(at)}
	if s.edit != nil {
		s.edit(&h)
	}
	c.clock.advance(path[1])
	c.answers <- h.Marshal()
	return len(b), nil
}

// Read waits for an answer until the deadline, which may change while it waits.
func (c *fakeConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		left := time.Until(c.deadline)
		c.mu.Unlock()
		if left <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		select {
		case a := <-c.answers:
			return copy(b, a), nil
		case <-time.After(min(left, 5*time.Millisecond)):
		}
	}
}

// harness is a Syncer on a fake clock and network, with the sleeps it asked for recorded.
type harness struct {
	*Syncer
	clock  *fakeClock
	net    *fakeNet
	sleeps []time.Duration
}

func newHarness(t *testing.T, clockErr time.Duration, servers []string, names map[string][]string, fakes map[string]*fakeServer) *harness {
	t.Helper()
	h := &harness{clock: newFakeClock(clockErr)}
	h.net = &fakeNet{clock: h.clock, names: names, servers: fakes}
	var mu sync.Mutex
	h.Syncer = New(Config{
		Servers:  servers,
		Timeout:  50 * time.Millisecond,
		Clock:    h.clock,
		Resolver: h.net,
		Dial:     h.net.Dial,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			h.sleeps = append(h.sleeps, d)
			return ctx.Err()
		},
		Console: &console.Writer{Out: &testutil.Buffer{}, Uptime: func() float64 { return 1 }},
	})
	return h
}

func approx(a, b, tol time.Duration) bool { return (a - b).Abs() <= tol }

// At boot the clock is 3 s behind: the first poll steps it, the next one finds it right and slews
// the rest, and the poll interval starts to grow.
func TestStepThenSlew(t *testing.T) {
	srv := &fakeServer{paths: [][2]time.Duration{{10 * ms, 10 * ms}}}
	h := newHarness(t, -3*time.Second, []string{"ntp.test"}, map[string][]string{"ntp.test": {"192.0.2.1"}},
		map[string]*fakeServer{"192.0.2.1:123": srv})
	ctx := context.Background()

	if wait := h.Poll(ctx); wait != confirmAfterStep {
		t.Errorf("wait after the step: %v, want %v", wait, confirmAfterStep)
	}
	st := h.Status()
	// NTP timestamps lose a nanosecond now and then.
	if len(h.clock.steps) != 1 || !approx(h.clock.steps[0], 3*time.Second, 2*time.Nanosecond) {
		t.Errorf("steps %v, want [3s]", h.clock.steps)
	}
	if st.State != contract.TimeSynced || st.LastStep == nil || !approx(time.Duration(st.LastStep.Seconds*1e9), 3*time.Second, 2*time.Nanosecond) ||
		!st.LastStep.Time.Equal(h.clock.Now()) {
		t.Errorf("after the step: %+v, last step %+v", st, st.LastStep)
	}
	// After a step the PLL gets nothing left to correct, but the clock is marked synchronised.
	if len(h.clock.slews) != 1 || h.clock.slews[0].offset != 0 || h.clock.slews[0].poll != DefaultMinPoll {
		t.Errorf("slews after the step: %+v", h.clock.slews)
	}
	if srv.count() != DefaultSamples || !slices.Equal(h.sleeps, []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second}) {
		t.Errorf("%d requests, sleeps %v; want %d samples 2 s apart", srv.count(), h.sleeps, DefaultSamples)
	}

	if wait := h.Poll(ctx); wait != 2*DefaultMinPoll {
		t.Errorf("wait after a good poll: %v, want %v", wait, 2*DefaultMinPoll)
	}
	st = h.Status()
	ls := st.LastSync
	if len(h.clock.steps) != 1 || len(h.clock.slews) != 2 || ls == nil {
		t.Fatalf("steps %v, slews %+v, last sync %+v", h.clock.steps, h.clock.slews, ls)
	}
	want := contract.TimeSync{Server: "ntp.test", Address: "192.0.2.1:123", Stratum: 2, ReferenceID: "10.9.8.7",
		DelaySeconds: 0.020, RootDistanceSeconds: 0.020, Time: h.clock.Now()}
	got := *ls
	got.OffsetSeconds, got.DelaySeconds, got.RootDistanceSeconds = 0, round(got.DelaySeconds), round(got.RootDistanceSeconds)
	if got != want || !approx(time.Duration(ls.OffsetSeconds*1e9), 0, time.Microsecond) {
		t.Errorf("last sync %+v, want %+v and offset 0", *ls, want)
	}
	// The slew carries the error bounds the kernel reports to adjtimex readers.
	if s := h.clock.slews[1]; s.poll != 2*DefaultMinPoll || !approx(s.maxErr, 20*ms, 10*time.Microsecond) || s.estErr != 0 {
		t.Errorf("slew %+v", s)
	}
	if st.PollSeconds != 64 || st.State != contract.TimeSynced || st.Error != "" {
		t.Errorf("status %+v", st)
	}
}

// round drops what NTP's 2^-16 s short format adds to or takes from milliseconds.
func round(s float64) float64 {
	return float64(time.Duration(s * 1e9).Round(100 * time.Microsecond).Seconds())
}

// Four samples through a queueing network: the least delayed one is right, the others are off by
// half their asymmetry, and their spread is the jitter.
func TestSamplesFiltered(t *testing.T) {
	srv := &fakeServer{offset: 100 * ms, paths: [][2]time.Duration{{40 * ms, 0}, {5 * ms, 5 * ms}, {0, 30 * ms}, {20 * ms, 20 * ms}}}
	h := newHarness(t, 0, []string{"192.0.2.1"}, nil, map[string]*fakeServer{"192.0.2.1:123": srv})
	h.Poll(context.Background())
	ls := h.Status().LastSync
	if ls == nil || len(h.clock.steps) != 0 || len(h.clock.slews) != 1 {
		t.Fatalf("status %+v, steps %v, slews %v", h.Status(), h.clock.steps, h.clock.slews)
	}
	if !approx(time.Duration(ls.OffsetSeconds*1e9), 100*ms, time.Microsecond) || !approx(time.Duration(ls.DelaySeconds*1e9), 10*ms, time.Microsecond) {
		t.Errorf("offset %v s, delay %v s; want the 10 ms sample's 0.1 s", ls.OffsetSeconds, ls.DelaySeconds)
	}
	// Offsets of the others: +20, -15 and 0 ms from it.
	if j := time.Duration(ls.JitterSeconds * 1e9); !approx(j, 14434*time.Microsecond, 10*time.Microsecond) {
		t.Errorf("jitter %v, want 14.434ms", j)
	}
	if s := h.clock.slews[0]; !approx(s.offset, 100*ms, time.Microsecond) {
		t.Errorf("slewed by %v, want 100ms", s.offset)
	}
}

// Servers that must not be followed, alone and beside a good one.
func TestServersRejected(t *testing.T) {
	kiss := func(code string) func(*ntp.Header) {
		return func(h *ntp.Header) {
			h.Stratum, h.Leap, h.ReferenceID = 0, ntp.LeapAlarm, [4]byte{code[0], code[1], code[2], code[3]}
		}
	}
	tests := []struct {
		name string
		bad  *fakeServer
		err  string
		wait time.Duration // after the first poll with the bad server alone
	}{
		{"kiss DENY", &fakeServer{edit: kiss("DENY")}, "kiss-o'-death DENY", firstRetry},
		{"kiss RATE", &fakeServer{edit: kiss("RATE")}, "kiss-o'-death RATE", 2 * DefaultMinPoll},
		{"leap alarm", &fakeServer{edit: func(h *ntp.Header) { h.Leap = ntp.LeapAlarm }}, "not synchronised", firstRetry},
		{"stratum 16", &fakeServer{edit: func(h *ntp.Header) { h.Stratum = 16 }}, "not synchronised", firstRetry},
		{"silent", &fakeServer{silent: true}, "no answer", firstRetry},
		{"too far from its reference", &fakeServer{edit: func(h *ntp.Header) { h.RootDispersion = 2 << 16 }}, "root distance 2.00", firstRetry},
		{"wrong origin", &fakeServer{edit: func(h *ntp.Header) { h.Origin++ }}, "no answer", firstRetry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0, []string{"bad.test"}, map[string][]string{"bad.test": {"192.0.2.66"}},
				map[string]*fakeServer{"192.0.2.66:123": tt.bad})
			if wait := h.Poll(context.Background()); wait != tt.wait {
				t.Errorf("wait %v, want %v", wait, tt.wait)
			}
			st := h.Status()
			if st.State != contract.TimeError || !strings.Contains(st.Error, tt.err) || !strings.Contains(st.Error, "bad.test (192.0.2.66:123)") {
				t.Errorf("state %q, error %q; want %q naming the server", st.State, st.Error, tt.err)
			}
			if len(h.clock.steps)+len(h.clock.slews) != 0 || st.LastSync != nil {
				t.Errorf("the clock was touched: steps %v, slews %v", h.clock.steps, h.clock.slews)
			}

			// Beside a good server, the bad one is ignored.
			bad := &fakeServer{edit: tt.bad.edit, silent: tt.bad.silent}
			good := &fakeServer{offset: 10 * ms}
			h = newHarness(t, 0, []string{"bad.test", "good.test"}, map[string][]string{"bad.test": {"192.0.2.66"}, "good.test": {"192.0.2.1"}},
				map[string]*fakeServer{"192.0.2.66:123": bad, "192.0.2.1:123": good})
			h.Poll(context.Background())
			if st := h.Status(); st.State != contract.TimeSynced || st.LastSync.Server != "good.test" {
				t.Errorf("beside a good server: %+v", st)
			}
		})
	}
}

// A server that says DENY is never asked again; one that asks for RATE keeps being asked.
func TestKissDenyIsFinal(t *testing.T) {
	deny := &fakeServer{edit: func(h *ntp.Header) { h.Stratum, h.ReferenceID = 0, [4]byte{'D', 'E', 'N', 'Y'} }}
	h := newHarness(t, 0, []string{"192.0.2.66"}, nil, map[string]*fakeServer{"192.0.2.66:123": deny})
	h.Poll(context.Background())
	if deny.count() != 1 {
		t.Errorf("%d requests to a server that said DENY, want 1 (it ends the burst)", deny.count())
	}
	h.Poll(context.Background())
	if n, st := deny.count(), h.Status(); n != 1 || !strings.Contains(st.Error, "refused us earlier (DENY)") {
		t.Errorf("second poll: %d requests, error %q", n, st.Error)
	}
}

// Names resolve through the resolver, at most MaxAddresses of each; names that do not resolve are
// reported, and a majority of agreeing servers outvotes a precise liar.
func TestResolveAndSelect(t *testing.T) {
	fakes := map[string]*fakeServer{}
	var pool []string
	for i := range 6 {
		a := fmt.Sprintf("192.0.2.%d", 10+i)
		pool = append(pool, a)
		fakes[a+":123"] = &fakeServer{offset: time.Duration(i) * ms}
	}
	liar := &fakeServer{offset: 5 * time.Second, edit: func(h *ntp.Header) { h.RootDelay, h.RootDispersion = 0, 0; h.Stratum = 1 }}
	fakes["[2001:db8::5]:123"] = liar
	h := newHarness(t, 0, []string{"nonexistent.test", "pool.test", "2001:db8::5"},
		map[string][]string{"pool.test": pool}, fakes)
	h.Poll(context.Background())
	st := h.Status()
	if st.State != contract.TimeSynced || st.LastSync.Server != "pool.test" || len(h.clock.steps) != 0 {
		t.Fatalf("status %+v, last sync %+v, steps %v", st, st.LastSync, h.clock.steps)
	}
	asked := 0
	for _, a := range pool {
		if fakes[a+":123"].count() > 0 {
			asked++
		}
	}
	if asked != DefaultMaxAddresses || liar.count() == 0 {
		t.Errorf("%d addresses of pool.test asked, want %d; liar asked %d times", asked, DefaultMaxAddresses, liar.count())
	}
	// The first address has the least distance among equals: the configured order decides.
	if st.LastSync.Address != "192.0.2.10:123" {
		t.Errorf("followed %s", st.LastSync.Address)
	}
}

func TestStepFailure(t *testing.T) {
	h := newHarness(t, time.Hour, []string{"192.0.2.1"}, nil, map[string]*fakeServer{"192.0.2.1:123": {}})
	h.clock.stepErr = errors.New("operation not permitted")
	h.Poll(context.Background())
	if st := h.Status(); st.State != contract.TimeError || !strings.Contains(st.Error, "step the clock by -1h0m0s: operation not permitted") {
		t.Errorf("status %+v", st)
	}
}

// Run writes the state file: unconfigured without servers, else after every poll.
func TestRunWritesState(t *testing.T) {
	dir := t.TempDir()
	read := func(path string) contract.TimeStatus {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var st contract.TimeStatus
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, b)
		}
		return st
	}

	ctx, cancel := context.WithCancel(context.Background())
	idle := New(Config{StatePath: filepath.Join(dir, "idle.json"), Clock: newFakeClock(0)})
	done := make(chan error)
	go func() { done <- idle.Run(ctx) }()
	for {
		if _, err := os.Stat(filepath.Join(dir, "idle.json")); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := read(filepath.Join(dir, "idle.json")); st.State != contract.TimeUnconfigured || st.Servers == nil || len(st.Servers) != 0 {
		t.Errorf("without servers: %+v", st)
	}

	h := newHarness(t, 0, []string{"192.0.2.1"}, nil, map[string]*fakeServer{"192.0.2.1:123": {offset: ms}})
	h.cfg.StatePath = filepath.Join(dir, "time.json")
	ctx, cancel = context.WithCancel(context.Background())
	var written contract.TimeStatus
	h.cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		if d >= DefaultMinPoll { // the wait for the next poll: the state is written by now
			written = read(h.cfg.StatePath)
			cancel()
		}
		return ctx.Err()
	}
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if written.State != contract.TimeSynced || written.NextPoll == nil || !written.NextPoll.Equal(h.clock.Now().Add(2*DefaultMinPoll)) ||
		written.PollSeconds != 64 || !slices.Equal(written.Servers, []string{"192.0.2.1"}) || written.LastSync == nil {
		t.Errorf("state file %+v", written)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	if s, err := ReadConfig(filepath.Join(dir, "none")); s != nil || err != nil {
		t.Errorf("missing file: %v, %v", s, err)
	}
	good := filepath.Join(dir, "ntp.conf")
	os.WriteFile(good, []byte("# x\nserver a.test\nserver 10.0.0.1\n"), 0o644)
	if s, err := ReadConfig(good); !slices.Equal(s, []string{"a.test", "10.0.0.1"}) || err != nil {
		t.Errorf("ReadConfig = %v, %v", s, err)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("server a\nserver\n"), 0o644)
	if _, err := ReadConfig(bad); err == nil || !strings.Contains(err.Error(), bad+": line 2") {
		t.Errorf("bad file: %v", err)
	}
}
