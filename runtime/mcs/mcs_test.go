package mcs

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    Pair
		wantErr bool
	}{
		{"s0:c3,c700", Pair{3, 700}, false},
		{"s0:c0,c1023", Pair{0, 1023}, false},
		{"s0:c5,c5", Pair{}, true},
		{"s0:c9,c2", Pair{}, true},
		{"s0:c1,c1024", Pair{}, true},
		{"s0", Pair{}, true},
		{"s1:c1,c2", Pair{}, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.Level() != tt.in {
			t.Errorf("Level() = %q, want %q", got.Level(), tt.in)
		}
	}
}

func TestAllocateUnique(t *testing.T) {
	a := &Allocator{Rand: rand.New(rand.NewPCG(1, 2))}
	kept := Pair{10, 20}
	if err := a.Reserve(kept); err != nil {
		t.Fatal(err)
	}
	if err := a.Reserve(kept); err == nil {
		t.Error("a pair reserved twice")
	}
	seen := map[Pair]bool{kept: true}
	for range 5000 {
		p, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if p.Valid() != nil || seen[p] {
			t.Fatalf("Allocate = %v: invalid or given twice", p)
		}
		if p.Low < PodCategories {
			t.Fatalf("Allocate = %v: a category pods are allocated from", p)
		}
		seen[p] = true
	}
	a.Release(kept)
	if err := a.Reserve(kept); err != nil {
		t.Errorf("released pair: %v", err)
	}
}

func TestPairAtCoversAll(t *testing.T) {
	const total = hostCategories * (hostCategories - 1) / 2
	seen := map[Pair]bool{}
	for n := range total {
		p := pairAt(n)
		if p.Valid() != nil || seen[p] || p.Low < PodCategories {
			t.Fatalf("pairAt(%d) = %v", n, p)
		}
		seen[p] = true
	}
}

// With all but one pair taken, Allocate finds the last one, then reports exhaustion.
func TestAllocateExhausted(t *testing.T) {
	a := &Allocator{}
	const total = hostCategories * (hostCategories - 1) / 2
	last := pairAt(total / 2)
	for n := range total {
		if p := pairAt(n); p != last {
			a.Reserve(p)
		}
	}
	if p, err := a.Allocate(); err != nil || p != last {
		t.Fatalf("Allocate = %v, %v; want the last free pair %v", p, err, last)
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Allocate with none free = %v", err)
	}
}

// containerd's CRI is configured with the same bound (contract.CRISELinuxCategoryRange), and
// both allocators stay inside the categories the policy declares.
func TestPodCategories(t *testing.T) {
	if PodCategories != contract.CRISELinuxCategoryRange {
		t.Errorf("PodCategories %d, containerd's selinux_category_range %d", PodCategories, contract.CRISELinuxCategoryRange)
	}
	if PodCategories < 2 || Categories-PodCategories < 2 {
		t.Errorf("PodCategories %d leaves one side without a pair", PodCategories)
	}
}
