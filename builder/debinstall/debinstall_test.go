package debinstall

import (
	"path"
	"strings"
	"testing"
)

func TestIsUnused(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{
		// As bookworm's packages name them (not yet merged into /usr) and as merged.
		{"./usr/lib/x86_64-linux-gnu/gconv", true},
		{"./usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/gconv-modules-extra.conf", true},
		{"/usr/lib/aarch64-linux-gnu/gconv/UTF-16.so", true},
		{"./lib/x86_64-linux-gnu/libmvec.so.1", true},
		{"/usr/lib/x86_64-linux-gnu/libthread_db.so.1", true},
		{"./lib/systemd/system/e2scrub@.service", true},
		{"./usr/lib/udev/rules.d/96-e2scrub.rules", true},
		{"./sbin/e2scrub", true},
		{"./etc/cron.d/e2scrub_all", true},
		// What the image needs stays.
		{"./lib/x86_64-linux-gnu/libc.so.6", false},
		{"./lib/x86_64-linux-gnu/libm.so.6", false},
		{"./lib64/ld-linux-x86-64.so.2", false},
		{"./usr/lib/x86_64-linux-gnu/xtables/libxt_MASQUERADE.so", false},
		{"./usr/sbin/xtables-nft-multi", false},
		{"./sbin/mke2fs", false},
		{"./sbin/e2scrub-like", false},
		{"./usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt", false},
		{"./usr/lib/x86_64-linux-gnu", false},
		{"./usr/lib", false},
		{"./", false},
	} {
		if got := IsUnused(c.path); got != c.want {
			t.Errorf("IsUnused(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}

// TestUnusedPatterns keeps the list well-formed: absolute, clean, merged-/usr paths that are
// valid patterns and do not swallow a whole system directory.
func TestUnusedPatterns(t *testing.T) {
	for _, p := range Unused {
		if _, err := path.Match(p, ""); err != nil {
			t.Errorf("%q: %v", p, err)
		}
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
			t.Errorf("%q: want an absolute, clean path", p)
		}
		if usrMerged(p) != p {
			t.Errorf("%q: name the merged-/usr path %q", p, usrMerged(p))
		}
		for _, top := range []string{"/", "/etc", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/share"} {
			if ok, _ := path.Match(p, top); ok {
				t.Errorf("%q drops all of %s", p, top)
			}
		}
	}
}
