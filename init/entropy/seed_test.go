package entropy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/tests/testutil"
)

func TestSeedLifecycle(t *testing.T) {
	testutil.Root(t, "crediting entropy (RNDADDENTROPY) needs CAP_SYS_ADMIN")
	dir := t.TempDir()
	path := filepath.Join(dir, "var/lib/ballast/random-seed")
	sink := filepath.Join(dir, "urandom") // mixing without credit is a write; a file shows what was written
	os.WriteFile(sink, nil, 0o600)
	me := Host{ID: "4c4c4544-0000-1000-8000-b2c04f333333", Urandom: sink}
	credit := Host{ID: me.ID} // the real /dev/urandom, for the credited load

	if st, err := Load(path, me); err != nil || st != SeedNone {
		t.Fatalf("first boot: %s, %v", st, err)
	}
	testutil.Need(t, Ready(), "the host's own random pool initialised")
	if err := Refresh(path, me); err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(path)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || len(written) != headerSize+seedSize {
		t.Fatalf("seed file: %v, %d bytes", err, len(written))
	}
	if st, err := Load(path, credit); err != nil || st != SeedCredited {
		t.Fatalf("this host's fresh seed: %s, %v; want credited", st, err)
	}
	// Used once: the file now holds other bytes, not creditable, so a crash before the next
	// Refresh cannot credit the same seed again.
	after, _ := os.ReadFile(path)
	if bytes.Equal(after[headerSize:], written[headerSize:]) {
		t.Error("the used seed is still in the file")
	}
	if st, err := Load(path, me); err != nil || st != SeedMixed {
		t.Errorf("a used seed: %s, %v; want mixed", st, err)
	}
	// Another machine (the disk copied to a new VM) mixes but never credits.
	if err := Refresh(path, me); err != nil {
		t.Fatal(err)
	}
	other := Host{ID: "ffffffff-0000-1000-8000-b2c04f333333", Urandom: sink}
	if st, err := Load(path, other); err != nil || st != SeedMixed {
		t.Errorf("a seed from another host: %s, %v; want mixed", st, err)
	}
	// Without an identity nothing is ever credited.
	if err := Refresh(path, Host{Urandom: sink}); err != nil {
		t.Fatal(err)
	}
	if st, err := Load(path, Host{Urandom: sink}); err != nil || st != SeedMixed {
		t.Errorf("a host without identity: %s, %v; want mixed", st, err)
	}
	// A damaged file is mixed in as it is.
	os.WriteFile(path, []byte("garbage"), 0o600)
	if st, err := Load(path, me); err != nil || st != SeedMixed {
		t.Errorf("a damaged seed: %s, %v; want mixed", st, err)
	}
	if mixed, _ := os.ReadFile(sink); !bytes.Contains(mixed, []byte("garbage")) {
		t.Error("the damaged seed was not written to the pool")
	}
}

func TestGatherWhenReady(t *testing.T) {
	testutil.Need(t, Ready(), "the host's own random pool initialised")
	if d, err := Gather(t.Context()); err != nil || d != 0 {
		t.Errorf("Gather on a ready pool = %v, %v", d, err)
	}
}
