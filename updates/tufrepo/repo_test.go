package tufrepo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/updates/manifest"
	"github.com/ballast-os/ballast/updates/tufrepo/repotest"
)

// verifyChain checks the published tree the way a TUF client does, from 1.root.json up: root
// rotations, then timestamp, snapshot and targets with signatures, thresholds, versions and
// expiry at now.
func verifyChain(dir string, now time.Time) (*trustedmetadata.TrustedMetadata, error) {
	md := filepath.Join(dir, MetadataDir)
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(md, name)) }
	first, err := read("1.root.json")
	if err != nil {
		return nil, err
	}
	tm, err := trustedmetadata.New(first)
	if err != nil {
		return nil, fmt.Errorf("root 1: %w", err)
	}
	for n := 2; ; n++ {
		data, err := read(fmt.Sprintf("%d.root.json", n))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			return nil, fmt.Errorf("root %d: %w", n, err)
		}
	}
	tm.RefTime = now
	data, err := read("timestamp.json")
	if err != nil {
		return nil, err
	}
	if _, err := tm.UpdateTimestamp(data); err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	if data, err = read(fmt.Sprintf("%d.snapshot.json", tm.Timestamp.Signed.Meta["snapshot.json"].Version)); err != nil {
		return nil, err
	}
	if _, err := tm.UpdateSnapshot(data, false); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if data, err = read(fmt.Sprintf("%d.targets.json", tm.Snapshot.Signed.Meta["targets.json"].Version)); err != nil {
		return nil, err
	}
	if _, err := tm.UpdateTargets(data); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return tm, nil
}

func versions(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	st, err := Status(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, s := range st {
		out[s.Role] = s.Version
	}
	return out
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyChain(dir, time.Now()); err != nil {
		t.Fatalf("fresh repository does not verify: %v", err)
	}
	for _, name := range []string{"1.root.json", "root.json", "1.targets.json", "1.snapshot.json", "timestamp.json"} {
		if _, err := os.Stat(filepath.Join(dir, MetadataDir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, KeysDir)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("keys dir: %v %v", st.Mode(), err)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, KeysDir, "*.pem"))
	if len(keys) != 4 {
		t.Errorf("keys: %v, want one per role", keys)
	}
	for _, k := range keys {
		if st, _ := os.Stat(k); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", k, st.Mode())
		}
	}
	filepath.Walk(filepath.Join(dir, PublishedDir), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if data, _ := os.ReadFile(p); strings.Contains(string(data), "PRIVATE KEY") {
				t.Errorf("%s: a private key in the published tree", p)
			}
		}
		return nil
	})
	root, err := metadata.Root().FromFile(RootPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !root.Signed.ConsistentSnapshot || root.Signed.Version != 1 {
		t.Errorf("root: consistent_snapshot %v version %d", root.Signed.ConsistentSnapshot, root.Signed.Version)
	}
	if err := Init(dir, Options{}); err == nil || !strings.Contains(err.Error(), "already there") {
		t.Errorf("second Init: %v", err)
	}
	if err := Init(t.TempDir(), Options{Keys: 1, Threshold: 2}); err == nil {
		t.Error("threshold above the key count accepted")
	}
	if err := Sign(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no repository here") {
		t.Errorf("Sign outside a repository: %v", err)
	}
}

func published(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(filepath.Join(dir, TargetsDir), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(dir, TargetsDir), p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestAdd(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "repo")
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	b1, b2 := filepath.Join(tmp, "b1"), filepath.Join(tmp, "b2")
	p1, err := repotest.Build(b1, repotest.Spec{Version: "1.0.0", DatastoreFormat: 1})
	if err != nil {
		t.Fatal(err)
	}
	// v2 keeps v1's slot-a UKI byte for byte: the same target, published once.
	sameUKI := fmt.Appendf(nil, "UKI of slot a, qemu 1.0.0, roothash=%s\n", p1.RootHash)
	p2, err := repotest.Build(b2, repotest.Spec{Version: "2.0.0", DatastoreFormat: 2, UKI: map[contract.Slot][]byte{contract.SlotA: sameUKI}})
	if err != nil {
		t.Fatal(err)
	}
	if p1.UKI[contract.SlotA] != p2.UKI[contract.SlotA] {
		t.Fatalf("test setup: UKIs differ: %v %v", p1.UKI[contract.SlotA], p2.UKI[contract.SlotA])
	}

	waves := []manifest.Wave{{Seeds: 1023, Start: time.Now().UTC().Truncate(time.Second)}, {Seeds: 2047, Start: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}}
	if _, err := Add(dir, b1, "first", nil, ""); err != nil {
		t.Fatal(err)
	}
	if v := versions(t, dir); v["targets"] != 2 || v["snapshot"] != 2 || v["timestamp"] != 2 || v["root"] != 1 {
		t.Errorf("versions after the first add: %v", v)
	}
	rel, err := Add(dir, b2, "second", waves, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rel.Migrations, ";") != "datastore format 1 -> 2 (upgrade from 1.0.0)" {
		t.Errorf("migrations: %q", rel.Migrations)
	}
	tm, err := verifyChain(dir, time.Now())
	if err != nil {
		t.Fatalf("repository does not verify after add: %v", err)
	}
	targets := tm.Targets[metadata.TARGETS].Signed.Targets
	// 4 files of v1, 3 new of v2, the manifest.
	if len(targets) != 8 {
		t.Errorf("%d targets, want 8", len(targets))
	}
	files := published(t, dir)
	if len(files) != 9 { // the 8 targets and the manifest's previous version
		t.Errorf("published files: %v", files)
	}
	for name, tf := range targets {
		p := filepath.Join(dir, TargetsDir, filepath.FromSlash(PublishedTargetName(name, hex.EncodeToString(tf.Hashes["sha256"]))))
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("target %s: %v", name, err)
			continue
		}
		if err := tf.VerifyLengthHashes(data); err != nil {
			t.Errorf("target %s: %v", name, err)
		}
	}

	m, err := Manifest(dir, "qemu", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxVersion != "2.0.0" || len(m.Releases) != 2 || m.Releases[1].Notes != "second" || len(m.Releases[1].Waves) != 2 || m.Releases[0].Payload.Root != p1.Root {
		t.Errorf("manifest: %+v", m)
	}

	// The same version again is refused and nothing is published.
	before := versions(t, dir)
	if _, err := Add(dir, b1, "again", nil, ""); err == nil || !strings.Contains(err.Error(), "already in manifests/qemu.json") {
		t.Errorf("duplicate add: %v", err)
	}
	if after := versions(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("versions changed by a refused add: %v -> %v", before, after)
	}
}

func TestAddRejectsBadBuilds(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "repo")
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		break_ func(build string, p *contract.Payload)
		waves  []manifest.Wave
		max    string
		want   string
	}{
		{name: "tampered file", break_: func(b string, p *contract.Payload) {
			f := filepath.Join(b, "update", p.Verity.Name)
			data, _ := os.ReadFile(f)
			data[len(data)/2] ^= 1
			os.WriteFile(f, data, 0o644)
		}, want: "sha256"},
		{name: "truncated file", break_: func(b string, p *contract.Payload) {
			os.Truncate(filepath.Join(b, "update", p.UKI[contract.SlotB].Name), 3)
		}, want: "3 bytes, payload.json says"},
		{name: "missing file", break_: func(b string, p *contract.Payload) { os.Remove(filepath.Join(b, "update", p.Root.Name)) }, want: ".root.zst"},
		{name: "no payload", break_: func(b string, p *contract.Payload) { os.Remove(filepath.Join(b, "update", "payload.json")) }, want: "no update payload"},
		{name: "unknown field", break_: func(b string, p *contract.Payload) {
			f := filepath.Join(b, "update", "payload.json")
			data, _ := os.ReadFile(f)
			os.WriteFile(f, []byte(strings.Replace(string(data), `"variant"`, `"colour": 1, "variant"`, 1)), 0o644)
		}, want: `unknown field "colour"`},
		{name: "bad waves", waves: []manifest.Wave{{Seeds: 4096, Start: time.Now()}}, want: "waves[0].seeds 4096"},
		{name: "bad max version", max: "two", want: "max version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := filepath.Join(tmp, strings.ReplaceAll(tc.name, " ", "-"))
			p, err := repotest.Build(b, repotest.Spec{Version: "3.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			if tc.break_ != nil {
				tc.break_(b, p)
			}
			before := versions(t, dir)
			_, err = Add(dir, b, "", tc.waves, tc.max)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add() = %v, want an error containing %q", err, tc.want)
			}
			if after := versions(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("versions changed by a refused add: %v -> %v", before, after)
			}
			if _, err := verifyChain(dir, time.Now()); err != nil {
				t.Errorf("repository broken by a refused add: %v", err)
			}
		})
	}
}

func TestThresholdAndSign(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "repo")
	if err := Init(dir, Options{Keys: 3, Threshold: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyChain(dir, time.Now()); err != nil {
		t.Fatalf("2-of-3 repository does not verify: %v", err)
	}
	// The second and third targets keys are held elsewhere: an add signs with one key only.
	away := filepath.Join(tmp, "away")
	os.Mkdir(away, 0o700)
	for _, n := range []int{2, 3} {
		name := fmt.Sprintf("targets-%d.pem", n)
		if err := os.Rename(filepath.Join(dir, KeysDir, name), filepath.Join(away, name)); err != nil {
			t.Fatal(err)
		}
	}
	b := filepath.Join(tmp, "b")
	if _, err := repotest.Build(b, repotest.Spec{Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Add(dir, b, "", nil, ""); err != nil {
		t.Fatal(err)
	}
	_, err := verifyChain(dir, time.Now())
	if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) || !strings.Contains(err.Error(), "targets") {
		t.Fatalf("targets with 1 of 2 signatures: verify = %v, want unsigned targets", err)
	}
	st, _ := Status(dir)
	for _, s := range st {
		if s.Signed() != (s.Role != "targets") || (s.Role == "targets" && (s.Signatures != 1 || s.KeysHere != 1)) {
			t.Errorf("status %+v", s)
		}
	}
	before := versions(t, dir)
	// The holder of key 2 signs.
	os.Rename(filepath.Join(away, "targets-2.pem"), filepath.Join(dir, KeysDir, "targets-2.pem"))
	if err := Sign(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyChain(dir, time.Now()); err != nil {
		t.Fatalf("after sign: %v", err)
	}
	if after := versions(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("sign changed versions: %v -> %v", before, after)
	}
	// Key 1 leaves and key 3 signs: key 1's signature stays, so there are three.
	os.Rename(filepath.Join(dir, KeysDir, "targets-1.pem"), filepath.Join(away, "targets-1.pem"))
	os.Rename(filepath.Join(away, "targets-3.pem"), filepath.Join(dir, KeysDir, "targets-3.pem"))
	if err := Sign(dir); err != nil {
		t.Fatal(err)
	}
	st, _ = Status(dir)
	if st[1].Role != "targets" || st[1].Signatures != 3 {
		t.Errorf("targets after the third key signed: %+v", st[1])
	}
}

func TestRefreshAndExpire(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "repo")
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := Refresh(dir, 2*time.Hour, 5*time.Hour); err != nil {
		t.Fatal(err)
	}
	st, _ := Status(dir)
	byRole := map[string]RoleStatus{}
	for _, s := range st {
		byRole[s.Role] = s
	}
	near := func(got time.Time, want time.Duration) bool {
		d := got.Sub(start)
		return d > want-time.Minute && d < want+time.Minute
	}
	if s := byRole["timestamp"]; s.Version != 2 || !near(s.Expires, 2*time.Hour) {
		t.Errorf("timestamp after refresh: %+v", s)
	}
	if s := byRole["snapshot"]; s.Version != 2 || !near(s.Expires, 5*time.Hour) {
		t.Errorf("snapshot after refresh: %+v", s)
	}
	if s := byRole["targets"]; s.Version != 1 {
		t.Errorf("targets changed by refresh: %+v", s)
	}

	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if err := Expire(dir, "timestamp", past); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyChain(dir, time.Now()); !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		t.Errorf("expired timestamp: verify = %v", err)
	}
	if _, err := verifyChain(dir, past.Add(-time.Minute)); err != nil {
		t.Errorf("before its expiry: %v", err)
	}
	if err := Refresh(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := verifyChain(dir, time.Now()); err != nil {
		t.Errorf("after refresh: %v", err)
	}

	later := time.Now().Add(1000 * time.Hour).UTC().Truncate(time.Second)
	if err := Expire(dir, "targets", later); err != nil {
		t.Fatal(err)
	}
	if v := versions(t, dir); v["targets"] != 2 || v["snapshot"] != 4 || v["timestamp"] != 5 {
		t.Errorf("versions after expire targets: %v", v)
	}
	if err := Expire(dir, "root", later); err != nil {
		t.Fatal(err)
	}
	tm, err := verifyChain(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if tm.Root.Signed.Version != 2 || !tm.Root.Signed.Expires.Equal(later) || !tm.Targets["targets"].Signed.Expires.Equal(later) {
		t.Errorf("root %d expires %v, targets expire %v", tm.Root.Signed.Version, tm.Root.Signed.Expires, tm.Targets["targets"].Signed.Expires)
	}
	if err := Expire(dir, "mirror", later); err == nil {
		t.Error("unknown role accepted")
	}
}

func TestKeyChecks(t *testing.T) {
	tmp := t.TempDir()
	dir, other := filepath.Join(tmp, "repo"), filepath.Join(tmp, "other")
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Init(other, Options{}); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, KeysDir, "timestamp-1.pem")
	os.Chmod(key, 0o644)
	if err := Refresh(dir, 0, 0); err == nil || !strings.Contains(err.Error(), "want 0600") {
		t.Errorf("world-readable key: %v", err)
	}
	os.Chmod(key, 0o600)
	data, _ := os.ReadFile(filepath.Join(other, KeysDir, "timestamp-1.pem"))
	os.WriteFile(filepath.Join(dir, KeysDir, "stray.pem"), data, 0o600)
	if err := Refresh(dir, 0, 0); err == nil || !strings.Contains(err.Error(), "not in the root metadata") {
		t.Errorf("another repository's key: %v", err)
	}
}

// TestAddPerArchitecture: one version released for amd64 and for arm64 goes into one manifest
// per architecture; each lists its own payload, and the same version twice for one architecture
// is still refused.
func TestAddPerArchitecture(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "repo")
	if err := Init(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	payloads := map[string]*contract.Payload{}
	for _, arch := range []string{"x86_64", "aarch64"} {
		b := filepath.Join(tmp, arch)
		p, err := repotest.Build(b, repotest.Spec{Version: "1.0.0", Arch: arch})
		if err != nil {
			t.Fatal(err)
		}
		payloads[arch] = p
		if _, err := Add(dir, b, "", nil, ""); err != nil {
			t.Fatalf("add %s: %v", arch, err)
		}
	}
	for _, tc := range []struct{ arch, payload, target string }{
		{"", "x86_64", "manifests/qemu.json"}, {"amd64", "x86_64", "manifests/qemu.json"},
		{"arm64", "aarch64", "manifests/qemu.arm64.json"}, {"aarch64", "aarch64", "manifests/qemu.arm64.json"},
	} {
		if got := manifest.TargetName("qemu", tc.arch); got != tc.target {
			t.Errorf("TargetName(qemu, %q) = %s, want %s", tc.arch, got, tc.target)
		}
		m, err := Manifest(dir, "qemu", tc.arch)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Releases) != 1 || m.Releases[0].Arch != tc.payload || m.Releases[0].Payload.Root != payloads[tc.payload].Root {
			t.Errorf("%q: manifest %+v", tc.arch, m.Releases)
		}
	}
	if _, err := Add(dir, filepath.Join(tmp, "aarch64"), "", nil, ""); err == nil || !strings.Contains(err.Error(), "already in manifests/qemu.arm64.json") {
		t.Errorf("arm64 1.0.0 twice: %v", err)
	}
}
