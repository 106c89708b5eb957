package format

import "testing"

// TestPlanQCOW checks the refcount structures cover every cluster of the
// file, themselves included, around the sizes where one more refcount
// block (32768 clusters) or refcount table cluster (8192 blocks) is needed.
func TestPlanQCOW(t *testing.T) {
	for _, c := range []struct {
		size    int64
		dataEnd int64 // in clusters
		l2      int
	}{
		{mib, 1, 0},
		{64 * mib, 33, 1},
		{1 << 30, 32764, 2},
		{1 << 30, 32765, 2},
		{1 << 30, 32766, 2},
		{1 << 30, 32767, 2},
		{4 << 40, 32768 * 8191, 8192},
		{4 << 40, 32768 * 8192, 8192},
	} {
		l := planQCOW(c.size, c.dataEnd*qcowClusterSize, make([]int, c.l2))
		want := c.dataEnd + int64(c.l2) + l.l1Clusters + l.refBlocks + l.refTableClus
		switch {
		case l.clusters != want:
			t.Errorf("%+v: %d clusters, want %d", c, l.clusters, want)
		case l.refBlocks*qcowRefsPerBlock < l.clusters:
			t.Errorf("%+v: %d refcount blocks cannot count %d clusters", c, l.refBlocks, l.clusters)
		case (l.refBlocks-1)*qcowRefsPerBlock >= l.clusters:
			t.Errorf("%+v: %d refcount blocks, one would do without", c, l.refBlocks)
		case l.refTableClus*qcowClusterSize/8 < l.refBlocks:
			t.Errorf("%+v: refcount table of %d clusters cannot hold %d blocks", c, l.refTableClus, l.refBlocks)
		case l.refTableOff != (want-l.refTableClus)*qcowClusterSize:
			t.Errorf("%+v: refcount table at %d, not at the end", c, l.refTableOff)
		}
		if guest := (c.size + qcowClusterSize - 1) / qcowClusterSize; l.l1Size*qcowL2Entries < guest {
			t.Errorf("%+v: L1 of %d entries cannot map %d clusters", c, l.l1Size, guest)
		}
	}
}
