package debian

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
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
	idx := map[contract.Arch]*Index{}
	start := time.Now()
	for _, arch := range contract.Archs() {
		idx[arch] = NewIndex(arch.Info().Debian)
	}
	for _, src := range DefaultSources() {
		t0 := time.Now()
		rel, err := a.release(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		valid := "none"
		if !rel.ValidUntil.IsZero() {
			valid = rel.ValidUntil.Format(time.DateTime)
		}
		for _, arch := range contract.Archs() {
			entries, err := a.packages(ctx, src, rel, arch.Info().Debian)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s (%s) of %s, signed by %s, Valid-Until %s: %s: %d packages in %.1fs", src.Name, rel.Codename, rel.Suite,
				rel.Date.Format(time.DateTime), rel.SignedBy, valid, arch, len(entries), time.Since(t0).Seconds())
			idx[arch].Add(entries...)
		}
	}
	t.Logf("all sources fetched and verified in %.1fs", time.Since(start).Seconds())

	// The closure of a container host's packages resolves on real data. The exclusions are what
	// an image without maintainer scripts, package manager or Debian initramfs does without.
	exclude := []string{"debconf", "perl-base", "dpkg", "libc-bin", "initramfs-tools", "linux-initramfs-tool", "linux-base"}
	for _, arch := range contract.Archs() {
		t0 := time.Now()
		wanted := []string{"linux-image-6.1.0-50-cloud-" + arch.Info().Debian, "systemd-boot-efi", "busybox-static", "e2fsprogs", "nftables", "iptables", "ca-certificates"}
		pkgs, err := Resolve(idx[arch], wanted, ResolveOptions{Exclude: exclude})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: closure of %d wanted packages: %d packages, resolved in %.2fs", arch, len(wanted), len(pkgs), time.Since(t0).Seconds())
	}

	// The pinned packages must still match the signed index when the version is the same.
	lock, err := LoadLock("../debian.lock")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lock.Packages {
		arch := contract.DefaultArch
		if p.Arch != ArchAll {
			if arch, err = contract.ParseArch(p.Arch); err != nil {
				t.Fatal(err)
			}
		}
		e, ok := idx[arch].Lookup(p.Name)
		switch {
		case !ok:
			t.Errorf("%s (%s): pinned but no longer in the archive", p.Name, p.Arch)
		case e.Version.String() != p.Version:
			t.Logf("%s (%s): pinned %s, archive now has %s (from %s)", p.Name, p.Arch, p.Version, e.Version, e.Origin)
		case e.SHA256 != p.SHA256 || e.Filename != p.Filename || e.Architecture != p.Arch:
			t.Errorf("%s %s (%s): lock pins %s %s, signed index says %s %s (%s)", p.Name, p.Version, p.Arch, p.Filename, p.SHA256, e.Filename, e.SHA256, e.Architecture)
		}
	}
}
