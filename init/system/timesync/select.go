package timesync

import (
	"cmp"
	"errors"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/ballast-os/ballast/init/system/timesync/ntp"
)

// MaxDistance is the largest root distance a server may have and still be followed (RFC 5905's
// MAXDIST): beyond it, its time is too uncertain to set a clock by.
const MaxDistance = 1500 * time.Millisecond

// candidate is what one address of a configured server gave in one poll, after filtering.
type candidate struct {
	server string // as configured
	order  int    // place in the configuration, then among the name's addresses
	addr   netip.AddrPort
	sample ntp.Sample // the best of the samples
	jitter time.Duration
}

// distance bounds the error of the candidate's offset: half the round trip to the server's
// reference clock, the dispersion the server admits to, and the jitter seen between samples.
func (c candidate) distance() time.Duration {
	return (c.sample.RootDelay+c.sample.Delay)/2 + c.sample.RootDispersion + c.jitter
}

// filter keeps the sample with the least delay: the one that met the least queueing on its way,
// and whose offset is therefore the least wrong, as RFC 5905's clock filter does. The jitter is the
// RMS difference of the other samples' offsets from it.
func filter(samples []ntp.Sample) (best ntp.Sample, jitter time.Duration, ok bool) {
	if len(samples) == 0 {
		return ntp.Sample{}, 0, false
	}
	best = slices.MinFunc(samples, func(a, b ntp.Sample) int { return cmp.Compare(a.Delay, b.Delay) })
	if len(samples) == 1 {
		return best, 0, true
	}
	var sum float64
	for _, s := range samples {
		d := (s.Offset - best.Offset).Seconds()
		sum += d * d
	}
	rms := math.Sqrt(sum / float64(len(samples)-1))
	return best, time.Duration(rms * float64(time.Second)), true
}

// errNoMajority: the servers' intervals do not overlap for a majority, so there is no telling which
// of them are right.
var errNoMajority = errors.New("the servers disagree: no majority of them agrees on the time")

// choose picks the candidate to follow. First the truechimers: Marzullo's intersection (RFC 5905
// section 11.2.1) finds the smallest interval that the correctness intervals [offset - distance,
// offset + distance] of a majority overlap, allowing for ever more falsetickers while they stay a
// minority; candidates whose interval misses it are dropped. Of the rest, the one with the smallest
// distance wins, the earlier configured one on a tie.
func choose(cands []candidate) (candidate, error) {
	if len(cands) == 0 {
		return candidate{}, errors.New("no candidates")
	}
	type edge struct {
		at    time.Duration
		start bool
	}
	var edges []edge
	for _, c := range cands {
		d := c.distance()
		edges = append(edges, edge{c.sample.Offset - d, true}, edge{c.sample.Offset + d, false})
	}
	// Starts before ends at the same point, so touching intervals count as overlapping.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if a.start == b.start {
			return 0
		}
		if a.start {
			return -1
		}
		return 1
	})
	m := len(cands)
	for f := 0; 2*f < m; f++ {
		need := m - f
		low, high, found := time.Duration(0), time.Duration(0), false
		n := 0
		for _, e := range edges {
			if e.start {
				n++
			} else {
				n--
			}
			if n >= need {
				low, found = e.at, true
				break
			}
		}
		if !found {
			continue
		}
		n = 0
		for i := len(edges) - 1; i >= 0; i-- {
			if !edges[i].start {
				n++
			} else {
				n--
			}
			if n >= need {
				high = edges[i].at
				break
			}
		}
		if low > high {
			continue
		}
		var survivors []candidate
		for _, c := range cands {
			d := c.distance()
			if c.sample.Offset+d >= low && c.sample.Offset-d <= high {
				survivors = append(survivors, c)
			}
		}
		return slices.MinFunc(survivors, func(a, b candidate) int {
			if c := cmp.Compare(a.distance(), b.distance()); c != 0 {
				return c
			}
			return cmp.Compare(a.order, b.order)
		}), nil
	}
	return candidate{}, errNoMajority
}
