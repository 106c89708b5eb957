package fat

import "fmt"

const (
	sectorSize      = 512
	reservedSectors = 32
	numFATs         = 2
	fsInfoSector    = 1
	backupBoot      = 6
	rootCluster     = 2
	// FAT drivers decide the FAT type from the cluster count alone: below 65525
	// a volume is FAT16 whatever its BPB says.
	minClusters = 65525
	// Cluster numbers 0x0FFFFFF7 and up are reserved (bad cluster, end of chain).
	maxClusters = 0x0FFFFFF5
	// Above this size Microsoft's own table switches FAT32 to 4 KiB clusters; we
	// never pick more, so an ESP stays friendly to firmware that only tested that.
	maxAutoCluster = 4096
)

// geometry is where everything lives in a volume of a given size.
type geometry struct {
	totalSectors      uint32
	sectorsPerCluster uint32
	fatSectors        uint32 // sectors per FAT copy
	clusters          uint32 // data clusters, numbered 2 .. clusters+1
}

func (g geometry) clusterBytes() int64 { return int64(g.sectorsPerCluster) * sectorSize }

func (g geometry) fatOffset(copyIndex int) int64 {
	return int64(reservedSectors+uint32(copyIndex)*g.fatSectors) * sectorSize
}

func (g geometry) dataOffset() int64 {
	return int64(reservedSectors+numFATs*g.fatSectors) * sectorSize
}

func (g geometry) clusterOffset(c uint32) int64 {
	return g.dataOffset() + int64(c-rootCluster)*g.clusterBytes()
}

// planGeometry lays out a FAT32 volume of size bytes. clusterSize 0 picks the
// largest cluster up to 4 KiB that still gives a FAT32 cluster count, which is
// 4 KiB from about 260 MiB up and smaller below.
func planGeometry(size int64, clusterSize int) (geometry, error) {
	if size <= 0 || size%sectorSize != 0 {
		return geometry{}, fmt.Errorf("volume size %d is not a positive multiple of %d bytes", size, sectorSize)
	}
	if size/sectorSize > 0xFFFFFFFF {
		return geometry{}, fmt.Errorf("volume size %d exceeds the 32-bit sector count of FAT32", size)
	}
	total := uint32(size / sectorSize)

	if clusterSize != 0 {
		if clusterSize < sectorSize || clusterSize > 32768 || clusterSize&(clusterSize-1) != 0 {
			return geometry{}, fmt.Errorf("cluster size %d is not a power of two from 512 to 32768", clusterSize)
		}
		g, ok := fitGeometry(total, uint32(clusterSize/sectorSize))
		if !ok {
			return geometry{}, fmt.Errorf("volume size %d with %d-byte clusters gives %d clusters; FAT32 needs %d to %d",
				size, clusterSize, g.clusters, minClusters, maxClusters)
		}
		return g, nil
	}

	var last geometry
	for cs := maxAutoCluster; cs >= sectorSize; cs /= 2 {
		g, ok := fitGeometry(total, uint32(cs/sectorSize))
		if ok {
			return g, nil
		}
		last = g
		if g.clusters > maxClusters {
			break // smaller clusters only make it worse
		}
	}
	if last.clusters > maxClusters {
		return geometry{}, fmt.Errorf("volume size %d needs more than %d clusters of %d bytes", size, maxClusters, maxAutoCluster)
	}
	// The 512-byte clusters were tried last, so last holds the most clusters possible.
	return geometry{}, fmt.Errorf("volume size %d is too small for FAT32: at most %d clusters of 512 bytes fit, FAT32 needs %d (about 33 MiB)",
		size, last.clusters, minClusters)
}

// fitGeometry sizes the FATs for total sectors and spc sectors per cluster and
// reports whether the resulting cluster count is a valid FAT32 one.
//
// Each FAT must hold an entry for every data cluster plus the two reserved
// entries, but the data area is what is left after the FATs themselves, so the
// size is a fixed point: the smallest F with entries(F) <= F, where entries(F)
// counts the sectors needed for the clusters left over when two FATs of F
// sectors are taken out. entries is non-increasing in F, so walking down from
// the bound that ignores the FATs' own space finds that smallest F.
func fitGeometry(total, spc uint32) (geometry, bool) {
	if total <= reservedSectors {
		return geometry{totalSectors: total, sectorsPerCluster: spc}, false
	}
	avail := uint64(total - reservedSectors)
	need := func(f uint64) uint64 {
		if numFATs*f >= avail {
			return 1
		}
		c := (avail - numFATs*f) / uint64(spc)
		return ceilDiv((c+2)*4, sectorSize)
	}
	f := need(0)
	for f > 1 && need(f-1) <= f-1 {
		f--
	}
	// Grow the FATs until the data area starts on a cluster boundary (the
	// volume itself starts 1 MiB aligned), so clusters line up with 4 KiB
	// device blocks. More FAT sectors never break the fit above.
	for (reservedSectors+numFATs*f)%uint64(spc) != 0 {
		f++
	}
	g := geometry{totalSectors: total, sectorsPerCluster: spc, fatSectors: uint32(f)}
	if numFATs*f >= avail {
		return g, false
	}
	clusters := (avail - numFATs*f) / uint64(spc)
	if clusters > 0xFFFFFFFF {
		clusters = 0xFFFFFFFF
	}
	g.clusters = uint32(clusters)
	return g, clusters >= minClusters && clusters <= maxClusters
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }
