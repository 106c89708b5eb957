// Package timesync is Ballast's time service: an NTP client (RFC 5905, client side) that keeps the
// system clock on the servers of settings.ntp.time-servers. Each poll takes a few samples from
// every address of every server, keeps each address's least-delayed sample, drops servers that
// refuse (kiss-o'-death), are unsynchronised or too far from their reference, picks the server to
// follow among those a majority agrees with, and corrects the clock: a step when it is more than
// StepThreshold off (at boot, typically), otherwise a slew through the kernel's PLL, marking the
// kernel clock synchronised either way. Its state goes to a file the apiserver serves as GET /time.
package timesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/timesync/ntp"
)

// Clock is the system clock as the service reads and corrects it.
type Clock interface {
	Now() time.Time
	// Step moves the clock by offset at once.
	Step(offset time.Duration) error
	// Slew has the kernel correct offset gradually (and learn the clock's frequency error), with
	// a time constant fitting the poll interval, and marks the clock synchronised with the given
	// maximum and estimated error.
	Slew(offset, poll, maxError, estError time.Duration) error
}

// Resolver finds the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Defaults of Config's zero fields.
const (
	DefaultSamples        = 4
	DefaultSampleInterval = 2 * time.Second // public servers rate-limit bursts faster than this
	DefaultTimeout        = 2 * time.Second
	DefaultStepThreshold  = 500 * time.Millisecond // the kernel's PLL takes at most this much
	DefaultMaxAddresses   = 4
)

// Config configures a Syncer; zero fields take the defaults in brackets.
type Config struct {
	// Servers are host names or addresses, in order of preference. None: the service only says
	// so in its state.
	Servers []string
	Port    int // [ntp.Port]
	// Samples are taken from each address per poll, SampleInterval apart, each waiting at most
	// Timeout for its answer [DefaultSamples, DefaultSampleInterval, DefaultTimeout].
	Samples        int
	SampleInterval time.Duration
	Timeout        time.Duration
	// MinPoll and MaxPoll bound the interval between polls [DefaultMinPoll, DefaultMaxPoll].
	MinPoll, MaxPoll time.Duration
	// StepThreshold: larger offsets are stepped, smaller ones slewed [DefaultStepThreshold].
	StepThreshold time.Duration
	// MaxAddresses bounds the addresses of one host name that are polled [DefaultMaxAddresses].
	MaxAddresses int
	Clock        Clock    // [System]
	Resolver     Resolver // [net.DefaultResolver: /etc/hosts, then DNS]
	// Dial opens a connected UDP socket [net.Dialer.DialContext].
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Sleep waits between samples and polls [a timer].
	Sleep func(ctx context.Context, d time.Duration) error
	// StatePath is where the state is written [nowhere].
	StatePath string
	Log       *slog.Logger    // [discarded]
	Console   *console.Writer // milestones: the first sync, steps [console.Default]
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Port == 0 {
		c.Port = ntp.Port
	}
	if c.Samples <= 0 {
		c.Samples = DefaultSamples
	}
	if c.MaxAddresses <= 0 {
		c.MaxAddresses = DefaultMaxAddresses
	}
	def(&c.SampleInterval, DefaultSampleInterval)
	def(&c.Timeout, DefaultTimeout)
	def(&c.MinPoll, DefaultMinPoll)
	def(&c.MaxPoll, DefaultMaxPoll)
	def(&c.StepThreshold, DefaultStepThreshold)
	c.MaxPoll = max(c.MaxPoll, c.MinPoll)
	if c.Clock == nil {
		c.Clock = System{}
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Console == nil {
		c.Console = console.Default
	}
	return c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Syncer keeps the clock synchronised. It is not safe for concurrent use.
type Syncer struct {
	cfg    Config
	poll   *poller
	status contract.TimeStatus
	// refused are the addresses that answered DENY or RSTR: never asked again.
	refused map[netip.AddrPort]string
}

// New returns a Syncer; Run starts it.
func New(cfg Config) *Syncer {
	cfg = cfg.withDefaults()
	return &Syncer{
		cfg:     cfg,
		poll:    newPoller(cfg.MinPoll, cfg.MaxPoll),
		status:  contract.TimeStatus{State: contract.TimeSyncing, Servers: slices.Clone(cfg.Servers)},
		refused: map[netip.AddrPort]string{},
	}
}

// Status is the state as last written.
func (s *Syncer) Status() contract.TimeStatus { return s.status }

// Run polls until ctx is done. Without servers it writes the unconfigured state and waits.
func (s *Syncer) Run(ctx context.Context) error {
	if len(s.cfg.Servers) == 0 {
		s.status.State, s.status.Servers = contract.TimeUnconfigured, []string{}
		s.writeState()
		s.cfg.Log.Info("no time servers configured: the clock is left alone")
		<-ctx.Done()
		return nil
	}
	s.writeState()
	for {
		wait := s.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		next := s.cfg.Clock.Now().Add(wait)
		s.status.NextPoll = &next
		s.writeState()
		if s.cfg.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// Poll measures the servers once and corrects the clock from the one chosen. It returns the wait
// before the next poll.
func (s *Syncer) Poll(ctx context.Context) time.Duration {
	cands, errs, rate := s.measure(ctx)
	if ctx.Err() != nil {
		return 0
	}
	if len(cands) == 0 {
		return s.fail(fmt.Errorf("no usable time server: %w", errors.Join(errs...)), rate)
	}
	best, err := choose(cands)
	if err != nil {
		return s.fail(err, rate)
	}
	return s.correct(best)
}

// fail records a poll that found nothing to follow.
func (s *Syncer) fail(err error, rateLimited bool) time.Duration {
	if s.status.State != contract.TimeError || s.status.Error != err.Error() {
		s.cfg.Log.Warn("time not synchronised", "err", err)
	}
	s.status.State, s.status.Error = contract.TimeError, err.Error()
	wait := s.poll.failed(rateLimited)
	s.status.PollSeconds = s.poll.interval.Seconds()
	return wait
}

// correct steps or slews the clock by the chosen candidate's offset.
func (s *Syncer) correct(c candidate) time.Duration {
	off, dist := c.sample.Offset, c.distance()
	stepped := false
	if off.Abs() > s.cfg.StepThreshold {
		if err := s.cfg.Clock.Step(off); err != nil {
			return s.fail(fmt.Errorf("step the clock by %v: %w", off, err), false)
		}
		stepped = true
		s.status.LastStep = &contract.TimeStep{Time: s.cfg.Clock.Now(), Seconds: off.Seconds()}
		s.cfg.Console.Milestone("time", "stepped by %+.6fs from %s (%s)", off.Seconds(), c.server, c.addr)
	}
	wait := s.poll.succeeded(off, stepped)
	slew := off
	if stepped {
		slew = 0 // also clears what the PLL still had to correct from before the step
	}
	if err := s.cfg.Clock.Slew(slew, s.poll.interval, dist, c.jitter); err != nil {
		return s.fail(fmt.Errorf("adjust the clock by %v: %w", slew, err), false)
	}
	if s.status.State != contract.TimeSynced {
		s.cfg.Console.Milestone("time", "synced with %s (%s) stratum=%d offset=%+.6fs", c.server, c.addr, c.sample.Stratum, off.Seconds())
	}
	s.status.State, s.status.Error = contract.TimeSynced, ""
	s.status.LastSync = &contract.TimeSync{
		Server:              c.server,
		Address:             c.addr.String(),
		Stratum:             c.sample.Stratum,
		ReferenceID:         c.sample.ReferenceID,
		OffsetSeconds:       off.Seconds(),
		DelaySeconds:        c.sample.Delay.Seconds(),
		JitterSeconds:       c.jitter.Seconds(),
		RootDistanceSeconds: dist.Seconds(),
		Time:                s.cfg.Clock.Now(),
	}
	s.status.PollSeconds = s.poll.interval.Seconds()
	s.cfg.Log.Info("synchronised", "server", c.server, "address", c.addr, "stratum", c.sample.Stratum,
		"offset", off, "delay", c.sample.Delay, "jitter", c.jitter, "stepped", stepped, "next", wait)
	return wait
}

// target is one address to measure.
type target struct {
	server string
	order  int
	addr   netip.AddrPort
}

// measure resolves the servers and samples all their addresses at once. It returns the usable
// candidates, why the others are not, and whether a server asked to be polled less often.
func (s *Syncer) measure(ctx context.Context) ([]candidate, []error, bool) {
	var targets []target
	var errs []error
	for i, name := range s.cfg.Servers {
		addrs, err := s.resolve(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j, a := range addrs {
			ap := netip.AddrPortFrom(a, uint16(s.cfg.Port))
			if why, ok := s.refused[ap]; ok {
				errs = append(errs, fmt.Errorf("%s (%s): refused us earlier (%s)", name, ap, why))
				continue
			}
			targets = append(targets, target{server: name, order: i*s.cfg.MaxAddresses + j, addr: ap})
		}
	}
	type result struct {
		samples []ntp.Sample
		err     error
	}
	results := make([]result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			results[i].samples, results[i].err = s.sample(ctx, t.addr)
		})
	}
	wg.Wait()

	var cands []candidate
	rate := false
	for i, t := range targets {
		r := results[i]
		var kiss *ntp.KissError
		if errors.As(r.err, &kiss) {
			if kiss.Stop() {
				s.refused[t.addr] = kiss.Code
			}
			rate = rate || kiss.Code == "RATE"
		}
		best, jitter, ok := filter(r.samples)
		if !ok {
			errs = append(errs, fmt.Errorf("%s (%s): %w", t.server, t.addr, r.err))
			continue
		}
		c := candidate{server: t.server, order: t.order, addr: t.addr, sample: best, jitter: jitter}
		if d := c.distance(); d > MaxDistance {
			errs = append(errs, fmt.Errorf("%s (%s): root distance %v is over %v", t.server, t.addr, d, MaxDistance))
			continue
		}
		cands = append(cands, c)
	}
	return cands, errs, rate
}

// resolve returns at most MaxAddresses addresses of a server, from the system resolver.
func (s *Syncer) resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := s.cfg.Resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s: no addresses", name)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
	}
	return addrs[:min(len(addrs), s.cfg.MaxAddresses)], nil
}

// sample takes up to Samples samples from one address. It stops at an answer that rules the server
// out (kiss-o'-death, unsynchronised) and returns the samples with the last error.
func (s *Syncer) sample(ctx context.Context, addr netip.AddrPort) ([]ntp.Sample, error) {
	conn, err := s.cfg.Dial(ctx, "udp", addr.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var out []ntp.Sample
	var last error
	for i := range s.cfg.Samples {
		if i > 0 && s.cfg.Sleep(ctx, s.cfg.SampleInterval) != nil {
			break
		}
		ectx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		smp, err := ntp.Exchange(ectx, conn, s.cfg.Clock.Now)
		cancel()
		var kiss *ntp.KissError
		switch {
		case err == nil:
			out = append(out, smp)
		case errors.As(err, &kiss), errors.Is(err, ntp.ErrUnsynchronised):
			return nil, err
		default:
			last = err
		}
	}
	return out, last
}

// writeState replaces the state file; a failure is logged, as the clock matters more.
func (s *Syncer) writeState() {
	if s.cfg.StatePath == "" {
		return
	}
	s.status.Updated = s.cfg.Clock.Now()
	if err := WriteState(s.cfg.StatePath, s.status); err != nil {
		s.cfg.Log.Warn("writing the state", "err", err)
	}
}

// ReadConfig reads the servers from the configuration the apiserver renders; no file means none.
func ReadConfig(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("time service configuration: %w", err)
	}
	c, err := contract.ParseTimeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c.Servers, nil
}
