package debian

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestLiveDebian checks the real archive against packages/keys: BALLAST_LIVE_DEBIAN=1 go test
// -run Live -v ./packages/debian/.
//
// It is not part of make test: it downloads Debian's whole current index (tens of MiB) from the
// internet, and the archive changes under it, so its verdict would depend on the day rather than
// on the commit. make test builds from the pinned lock through the verified cache instead, and
// make lock is where the live index is read.
func TestLiveDebian(t *testing.T) {
	if os.Getenv("BALLAST_LIVE_DEBIAN") != "1" {
		t.Skip("opt-in: set BALLAST_LIVE_DEBIAN=1 to fetch and verify the live bookworm index")
	}
	keys, err := LoadKeyring("../keys")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := newArchive(keys)
	idx := NewIndex(Arch)
	start := time.Now()
	for _, src := range DefaultSources() {
		t0 := time.Now()
		entries, rel, err := a.index(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		valid := "none"
		if !rel.ValidUntil.IsZero() {
			valid = rel.ValidUntil.Format(time.DateTime)
		}
		t.Logf("%s: %s (%s) of %s, signed by %s, Valid-Until %s: %d packages in %.1fs", src.Name, rel.Codename, rel.Suite,
			rel.Date.Format(time.DateTime), rel.SignedBy, valid, len(entries), time.Since(t0).Seconds())
		idx.Add(entries...)
	}
	t.Logf("all sources fetched and verified in %.1fs, %d names", time.Since(start).Seconds(), idx.Len())

	// The closure of a container host's packages resolves on real data. The exclusions are what
	// an image without maintainer scripts, package manager or Debian initramfs does without.
	t0 := time.Now()
	wanted := []string{"linux-image-6.1.0-50-cloud-amd64", "systemd-boot-efi", "busybox-static", "e2fsprogs", "nftables", "iptables", "ca-certificates"}
	exclude := []string{"debconf", "perl-base", "dpkg", "libc-bin", "initramfs-tools", "linux-initramfs-tool", "linux-base"}
	pkgs, err := Resolve(idx, wanted, ResolveOptions{Exclude: exclude})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("closure of %d wanted packages: %d packages, resolved in %.2fs", len(wanted), len(pkgs), time.Since(t0).Seconds())

	// The hand-pinned packages must still match the signed index when the version is the same.
	lock, err := LoadLock("../debian.lock")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lock.Packages {
		e, ok := idx.Lookup(p.Name)
		switch {
		case !ok:
			t.Errorf("%s: pinned but no longer in the archive", p.Name)
		case e.Version.String() != p.Version:
			t.Logf("%s: pinned %s, archive now has %s (from %s)", p.Name, p.Version, e.Version, e.Origin)
		case e.SHA256 != p.SHA256 || e.Filename != p.Filename:
			t.Errorf("%s %s: lock pins %s %s, signed index says %s %s", p.Name, p.Version, p.Filename, p.SHA256, e.Filename, e.SHA256)
		}
	}
}
