// Package mcs allocates the SELinux MCS category pairs that keep containers apart: each running
// container gets a pair no other one has (s0:cX,cY with X < Y), so under the policy a container's
// processes can reach only files labelled with its own pair.
package mcs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
)

// Categories is how many categories the policy declares (c0 to c1023).
const Categories = 1024

// PodCategories is how many of them, c0 to c<PodCategories-1>, containerd's CRI allocates the
// pairs of Kubernetes pods from (go-selinux, inside containerd; its CRI setting
// selinux_category_range); Allocate hands host containers pairs from the rest. Two allocators
// in two processes then never hand out the same pair, nor one whose categories cover another's,
// whichever ran first.
const PodCategories = 512

// hostCategories is how many categories Allocate draws from, c<PodCategories> up.
const hostCategories = Categories - PodCategories

// Pair is two distinct categories, Low < High.
type Pair struct{ Low, High int }

// Level is the pair as an MCS level, "s0:c3,c700".
func (p Pair) Level() string { return fmt.Sprintf("s0:c%d,c%d", p.Low, p.High) }

var levelRE = regexp.MustCompile(`^s0:c(\d+),c(\d+)$`)

// ParseLevel reads a level Level wrote.
func ParseLevel(s string) (Pair, error) {
	m := levelRE.FindStringSubmatch(s)
	if m == nil {
		return Pair{}, fmt.Errorf("mcs: %q is not s0:cX,cY", s)
	}
	lo, _ := strconv.Atoi(m[1])
	hi, _ := strconv.Atoi(m[2])
	p := Pair{lo, hi}
	if err := p.Valid(); err != nil {
		return Pair{}, err
	}
	return p, nil
}

func (p Pair) Valid() error {
	if p.Low < 0 || p.High >= Categories || p.Low >= p.High {
		return fmt.Errorf("mcs: c%d,c%d is not two categories in order below c%d", p.Low, p.High, Categories)
	}
	return nil
}

// ErrExhausted means every pair is in use.
var ErrExhausted = errors.New("mcs: every category pair is in use")

// Allocator hands out pairs; the zero value is ready. It is safe for concurrent use.
type Allocator struct {
	mu   sync.Mutex
	used map[Pair]bool
	// Rand picks among free pairs; nil uses math/rand/v2. Which pair a container gets need not
	// be secret, only unique.
	Rand *rand.Rand
}

// Reserve marks a pair as in use: one a container kept across a restart of the runtime. Any
// valid pair is accepted: a container made before host pairs moved above PodCategories keeps its
// own.
func (a *Allocator) Reserve(p Pair) error {
	if err := p.Valid(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used[p] {
		return fmt.Errorf("mcs: %s is in use", p.Level())
	}
	if a.used == nil {
		a.used = map[Pair]bool{}
	}
	a.used[p] = true
	return nil
}

// Allocate returns a pair no one holds, of two categories from c<PodCategories> up.
func (a *Allocator) Allocate() (Pair, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	const total = hostCategories * (hostCategories - 1) / 2
	if a.used == nil {
		a.used = map[Pair]bool{}
	}
	intn := rand.IntN
	if a.Rand != nil {
		intn = a.Rand.IntN
	}
	// Random probes find a free pair at once while few are used; past that, a scan from a
	// random start is bounded.
	for range 64 {
		x, y := PodCategories+intn(hostCategories), PodCategories+intn(hostCategories)
		if x == y {
			continue
		}
		p := Pair{min(x, y), max(x, y)}
		if !a.used[p] {
			a.used[p] = true
			return p, nil
		}
	}
	start := intn(total)
	for i := range total {
		p := pairAt((start + i) % total)
		if !a.used[p] {
			a.used[p] = true
			return p, nil
		}
	}
	return Pair{}, ErrExhausted
}

// Release gives a pair back.
func (a *Allocator) Release(p Pair) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.used, p)
}

// pairAt is the n-th host pair in the order (P,P+1), (P,P+2), ..., (P,1023), (P+1,P+2), ...
// with P = PodCategories.
func pairAt(n int) Pair {
	lo := PodCategories
	for row := hostCategories - 1; n >= row; row-- {
		n -= row
		lo++
	}
	return Pair{lo, lo + 1 + n}
}
