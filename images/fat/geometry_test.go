package fat

import (
	"strings"
	"testing"
)

const mib = 1 << 20

func TestPlanGeometry(t *testing.T) {
	tests := []struct {
		name        string
		size        int64
		clusterSize int
		wantCluster int64 // 0: only check the invariants
		wantErr     string
	}{
		{name: "smallest that fits", size: 33 * mib, wantCluster: 512},
		{name: "64 MiB, where go-diskfs miscounts", size: 64 * mib, wantCluster: 512},
		{name: "100 MiB", size: 100 * mib, wantCluster: 1024},
		{name: "128 MiB", size: 128 * mib, wantCluster: 1024},
		{name: "256 MiB", size: 256 * mib, wantCluster: 2048},
		{name: "260 MiB", size: 260 * mib, wantCluster: 4096},
		{name: "512 MiB", size: 512 * mib, wantCluster: 4096},
		{name: "8 GiB", size: 8 << 30, wantCluster: 4096},
		{name: "odd sector count", size: 300*mib + 512, wantCluster: 4096},
		{name: "explicit 512", size: 512 * mib, clusterSize: 512, wantCluster: 512},
		{name: "explicit 32K on a big volume", size: 4 << 30, clusterSize: 32768, wantCluster: 32768},
		{name: "too small", size: 32 * mib, wantErr: "too small for FAT32"},
		{name: "not whole sectors", size: 64*mib + 1, wantErr: "multiple of 512"},
		{name: "zero", size: 0, wantErr: "multiple of 512"},
		{name: "explicit cluster too big for size", size: 64 * mib, clusterSize: 4096, wantErr: "FAT32 needs"},
		{name: "explicit cluster not a power of two", size: 64 * mib, clusterSize: 3072, wantErr: "power of two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := planGeometry(tt.size, tt.clusterSize)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("planGeometry(%d, %d) error = %v, want one containing %q", tt.size, tt.clusterSize, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("planGeometry(%d, %d): %v", tt.size, tt.clusterSize, err)
			}
			if tt.wantCluster != 0 && g.clusterBytes() != tt.wantCluster {
				t.Errorf("cluster size = %d, want %d", g.clusterBytes(), tt.wantCluster)
			}
			checkGeometry(t, g)
		})
	}
}

// checkGeometry verifies the invariants fsck.fat and FAT drivers rely on,
// computed independently of fitGeometry's search.
func checkGeometry(t *testing.T, g geometry) {
	t.Helper()
	spc := int64(g.sectorsPerCluster)
	data := int64(g.totalSectors) - reservedSectors - numFATs*int64(g.fatSectors)
	if got := data / spc; got != int64(g.clusters) {
		t.Errorf("clusters = %d, but the data area holds %d", g.clusters, got)
	}
	if g.clusters < minClusters || g.clusters > maxClusters {
		t.Errorf("clusters = %d, outside the FAT32 range", g.clusters)
	}
	entries := int64(g.fatSectors) * sectorSize / 4
	if entries < int64(g.clusters)+2 {
		t.Errorf("FAT of %d sectors has %d entries, fewer than the %d clusters + 2", g.fatSectors, entries, g.clusters)
	}
	// Not wasteful: one aligned step smaller would not cover the clusters it frees.
	step := max(spc/2, 1)
	smaller := int64(g.fatSectors) - step
	moreClusters := (int64(g.totalSectors) - reservedSectors - numFATs*smaller) / spc
	if smaller*sectorSize/4 >= moreClusters+2 {
		t.Errorf("FAT of %d sectors is larger than needed; %d would do", g.fatSectors, smaller)
	}
	if off := g.dataOffset(); off%g.clusterBytes() != 0 {
		t.Errorf("data area at byte %d is not aligned to the %d-byte cluster", off, g.clusterBytes())
	}
}
