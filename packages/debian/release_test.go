package debian

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// releaseText is a minimal Release file listing files (path → content) for suite.
func releaseText(suite string, validUntil time.Time, files map[string][]byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: Debian\nSuite: old%s\nCodename: %s\n", suite, suite)
	fmt.Fprintf(&b, "Date: %s\n", time.Now().Add(-time.Hour).UTC().Format(time.RFC1123))
	if !validUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", validUntil.UTC().Format(time.RFC1123))
	}
	b.WriteString("Architectures: all amd64 arm64\nComponents: main\nSHA256:\n")
	for _, p := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(&b, " %x %8d %s\n", sha256.Sum256(files[p]), len(files[p]), p)
	}
	return b.String()
}

func TestVerifyInRelease(t *testing.T) {
	trusted, stranger := testKey(t, "archive"), testKey(t, "stranger")
	keys := testKeyring(t, trusted)
	files := map[string][]byte{"main/binary-amd64/Packages.xz": []byte("xz"), "main/binary-amd64/Packages": []byte("plain")}
	text := releaseText("bookworm", time.Time{}, files)
	good := clearsigned(t, text, stranger, trusted) // an untrusted signature first must be skipped
	now := time.Now()
	strangerID := keyID(stranger.PrimaryKey.KeyId)
	trustedID := keyID(trusted.PrimaryKey.KeyId)

	cases := []struct {
		name string
		data []byte
		now  time.Time
		want string // error text; "" means it verifies
	}{
		{"ok", good, now, ""},
		{"valid-until ahead", clearsigned(t, releaseText("bookworm", now.Add(time.Hour), files), trusted), now, ""},
		{"unsigned", []byte(text), now, "not a clearsigned file"},
		{"other key", clearsigned(t, text, stranger), now, "signed only by key " + strangerID + ", none of them in"},
		{"altered text", []byte(strings.Replace(string(good), "Codename: bookworm", "Codename: bookwurm", 1)), now, "signature by key " + trustedID},
		{"expired", clearsigned(t, releaseText("bookworm", now.Add(-time.Minute), files), trusted), now, "expired: Valid-Until"},
		{"text after", append(append([]byte{}, good...), "Codename: evil\n"...), now, "outside the signed block"},
		{"text before", append([]byte("SHA256:\n x\n"), good...), now, "outside the signed block"},
		{"no files", clearsigned(t, "Origin: Debian\nCodename: bookworm\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n", trusted), now, "no SHA256 file list"},
		{"bad date", clearsigned(t, "Date: yesterday\n", trusted), now, "Date"},
		{"signed before key existed", good, now.Add(-24 * time.Hour), "signature by key " + trustedID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := VerifyInRelease(c.data, keys, c.now)
			if c.want != "" {
				t.Log(err)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want error with %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Codename != "bookworm" || r.SignedBy != trustedID || len(r.Files) != 2 ||
				r.Files["main/binary-amd64/Packages.xz"].Size != 2 {
				t.Fatalf("parsed %+v", r)
			}
		})
	}
}

func TestLoadKeyring(t *testing.T) {
	if _, err := LoadKeyring(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.asc") {
		t.Fatalf("empty dir: %v", err)
	}
	k := testKey(t, "k")
	dir := keyDir(t, k)
	if err := writeFile(dir+"/junk.asc", "not a key"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(dir); err == nil || !strings.Contains(err.Error(), "junk.asc") {
		t.Fatalf("junk key file: %v", err)
	}
}

func TestRepoKeys(t *testing.T) {
	k, err := LoadKeyring("../keys")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8", // bookworm automatic
		"05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0", // bookworm security automatic
		"4D64FEC119C2029067D6E791F8D2585B8783D481", // bookworm stable
	}
	got := strings.Join(k.Fingerprints(), " ")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("packages/keys lacks %s; has %s", w, got)
		}
	}
	if len(k.Fingerprints()) != len(want) {
		t.Errorf("packages/keys holds %d keys, want exactly %d: %s", len(k.Fingerprints()), len(want), got)
	}
}
