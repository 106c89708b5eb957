// Package tufrepo creates and maintains Ballast's static update repository: a TUF repository on
// disk whose targets are the versions manifests (manifests/<variant>.json) and the update
// payload files of every release.
//
// Layout of a repository directory DIR:
//
//	DIR/repo.json                    expiry periods used by add, refresh and expire (not secret)
//	DIR/keys/<role>-<n>.pem          ed25519 private keys, PKCS #8, mode 0600 (never published)
//	DIR/repository/                  the published tree: serve or copy this directory only
//	  metadata/root.json             the newest root; a variant's [updates] root points at it
//	  metadata/<N>.root.json         every root version (clients walk them to rotate keys)
//	  metadata/<N>.targets.json      targets, one file per version
//	  metadata/<N>.snapshot.json     snapshot, one file per version
//	  metadata/timestamp.json        the only file rewritten in place, always written last
//	  targets/<sha256>.<name>        target files, prefixed by the sha256 of their content
//	  targets/manifests/<sha256>.<variant>.json
//
// The repository uses TUF's consistent snapshots: snapshot and targets metadata and target files
// are written under new names and never changed afterwards (a later sign only adds signatures),
// and timestamp.json is replaced last with a rename. A host in the middle of an update thus
// never sees a mix of old and new files, and the published tree can be copied to any static web
// server, timestamp.json last, while hosts are reading it. The payload file names already start
// with their sha256, so their published names carry it twice; that is the price of one naming
// rule for every target, which is what go-tuf's updater and tufclient expect.
//
// Snapshot and timestamp list the version of the metadata they cover, without lengths or
// hashes: the signed versions already pin the exact file under consistent snapshots, and it
// lets sign add the signatures of further keys (thresholds above 1) to a role without
// invalidating the roles above it.
package tufrepo

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// Places in a repository directory.
const (
	ConfigFile   = "repo.json"
	KeysDir      = "keys"
	PublishedDir = "repository"
	MetadataDir  = "repository/metadata"
	TargetsDir   = "repository/targets"
)

// Roles are TUF's top-level roles, in the order they are signed after a change.
var Roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// Expiry is how long each role's metadata stays valid after it is signed.
type Expiry struct {
	Root      contract.Duration `json:"root"`
	Targets   contract.Duration `json:"targets"`
	Snapshot  contract.Duration `json:"snapshot"`
	Timestamp contract.Duration `json:"timestamp"`
}

// DefaultExpiry: a year for the root and targets (renewed by every add), a week for the snapshot
// and a day for the timestamp, which `ballast repo refresh` renews.
func DefaultExpiry() Expiry {
	day := 24 * time.Hour
	return Expiry{Root: contract.Duration(365 * day), Targets: contract.Duration(365 * day), Snapshot: contract.Duration(7 * day), Timestamp: contract.Duration(day)}
}

func (e Expiry) of(role string) time.Duration {
	switch role {
	case metadata.ROOT:
		return time.Duration(e.Root)
	case metadata.TARGETS:
		return time.Duration(e.Targets)
	case metadata.SNAPSHOT:
		return time.Duration(e.Snapshot)
	}
	return time.Duration(e.Timestamp)
}

func (e *Expiry) set(role string, d time.Duration) {
	switch role {
	case metadata.ROOT:
		e.Root = contract.Duration(d)
	case metadata.TARGETS:
		e.Targets = contract.Duration(d)
	case metadata.SNAPSHOT:
		e.Snapshot = contract.Duration(d)
	case metadata.TIMESTAMP:
		e.Timestamp = contract.Duration(d)
	}
}

// ParseExpiry reads "root=8760h,targets=2160h,snapshot=168h,timestamp=24h" (any subset) over
// the defaults.
func ParseExpiry(spec string) (Expiry, error) {
	e := DefaultExpiry()
	if strings.TrimSpace(spec) == "" {
		return e, nil
	}
	for _, part := range strings.Split(spec, ",") {
		role, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !slices.Contains(Roles, role) {
			return e, fmt.Errorf("expiry %q: want ROLE=DURATION with ROLE one of %s", part, strings.Join(Roles, ", "))
		}
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return e, fmt.Errorf("expiry %q: want a positive duration like 24h", part)
		}
		e.set(role, d)
	}
	return e, nil
}

// Options are the choices made once, at Init.
type Options struct {
	Keys      int    // keys per role; 0 means 1
	Threshold int    // signatures each role needs; 0 means 1
	Expiry    Expiry // zero fields take DefaultExpiry's
}

type config struct {
	Expiry Expiry `json:"expiry"`
}

// RootPath is the repository's newest root.json: the trusted root an image carries.
func RootPath(dir string) string { return filepath.Join(dir, MetadataDir, "root.json") }

// repo is a repository loaded for a change: its newest metadata and the private keys present.
type repo struct {
	dir       string
	cfg       config
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	keys      map[string]ed25519.PrivateKey // by TUF key ID
	now       time.Time
	unlock    func()
}

// Init creates a repository in dir (which may exist but must not hold one): the keys of every
// role, and root, targets (no targets yet), snapshot and timestamp metadata, all signed.
func Init(dir string, opts Options) error {
	if opts.Keys == 0 {
		opts.Keys = 1
	}
	if opts.Threshold == 0 {
		opts.Threshold = 1
	}
	if opts.Threshold < 1 || opts.Keys < opts.Threshold || opts.Keys > 16 {
		return fmt.Errorf("tufrepo: %d keys with threshold %d: want 1 <= threshold <= keys <= 16", opts.Keys, opts.Threshold)
	}
	def := DefaultExpiry()
	for _, role := range Roles {
		if d := opts.Expiry.of(role); d < 0 {
			return fmt.Errorf("tufrepo: %s expiry %v: negative", role, d)
		} else if d == 0 {
			opts.Expiry.set(role, def.of(role))
		}
	}
	for _, p := range []string{ConfigFile, KeysDir, PublishedDir} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			return fmt.Errorf("tufrepo: %s: a repository is already there (%s exists)", dir, p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	if err := os.Mkdir(filepath.Join(dir, KeysDir), 0o700); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	for _, p := range []string{MetadataDir, TargetsDir} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			return fmt.Errorf("tufrepo: %w", err)
		}
	}
	unlock, err := lock(dir)
	if err != nil {
		return err
	}
	defer unlock()
	r := &repo{dir: dir, cfg: config{Expiry: opts.Expiry}, keys: map[string]ed25519.PrivateKey{}, now: now()}
	r.root = metadata.Root(r.expires(metadata.ROOT))
	r.root.Signed.ConsistentSnapshot = true
	for _, role := range Roles {
		r.root.Signed.Roles[role].Threshold = opts.Threshold
		for n := 1; n <= opts.Keys; n++ {
			id, err := r.newKey(role, n)
			if err != nil {
				return err
			}
			key, err := metadata.KeyFromPublicKey(r.keys[id].Public())
			if err != nil {
				return fmt.Errorf("tufrepo: %s key %d: %w", role, n, err)
			}
			if err := r.root.Signed.AddKey(key, role); err != nil {
				return fmt.Errorf("tufrepo: %s key %d: %w", role, n, err)
			}
		}
	}
	cfg, err := json.MarshalIndent(r.cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("tufrepo: %s: %w", ConfigFile, err)
	}
	if err := writeAtomic(filepath.Join(dir, ConfigFile), append(cfg, '\n'), 0o644); err != nil {
		return err
	}
	if err := r.sign(metadata.ROOT, true); err != nil {
		return err
	}
	if err := r.writeRoot(); err != nil {
		return err
	}
	r.targets = metadata.Targets(r.expires(metadata.TARGETS))
	r.snapshot = metadata.Snapshot(r.expires(metadata.SNAPSHOT))
	r.timestamp = metadata.Timestamp(r.expires(metadata.TIMESTAMP))
	// Version 1 of each, as the constructors made them.
	r.targets.Signed.Version, r.snapshot.Signed.Version, r.timestamp.Signed.Version = 0, 0, 0
	return r.publish(metadata.TARGETS, time.Time{})
}

// now is the time metadata is signed at, to the second (TUF expiry times have no fractions).
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func (r *repo) expires(role string) time.Time { return r.now.Add(r.cfg.Expiry.of(role)) }

// newKey makes and saves the n-th key of a role and returns its TUF key ID.
func (r *repo) newKey(role string, n int) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("tufrepo: %s key %d: %w", role, n, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("tufrepo: %s key %d: %w", role, n, err)
	}
	path := filepath.Join(r.dir, KeysDir, fmt.Sprintf("%s-%d.pem", role, n))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("tufrepo: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("tufrepo: %s: %w", path, err)
	}
	id, err := keyID(pub)
	if err != nil {
		return "", err
	}
	r.keys[id] = priv
	return id, nil
}

func keyID(pub ed25519.PublicKey) (string, error) {
	key, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("tufrepo: key: %w", err)
	}
	id, err := key.ID()
	if err != nil {
		return "", fmt.Errorf("tufrepo: key: %w", err)
	}
	return id, nil
}

// lock takes the repository's lock, so two commands never interleave their writes.
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, KeysDir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("tufrepo: %s: another ballast repo command holds the repository: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// open loads a repository: config, newest metadata of every role, and the keys present.
func open(dir string) (*repo, error) {
	cfgData, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("tufrepo: %s: no repository here (run `ballast repo init %s` first)", dir, dir)
		}
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	r := &repo{dir: dir, now: now(), unlock: unlock}
	if err := r.load(cfgData); err != nil {
		unlock()
		return nil, err
	}
	return r, nil
}

func (r *repo) close() {
	if r.unlock != nil {
		r.unlock()
	}
}

func (r *repo) load(cfgData []byte) error {
	dec := json.NewDecoder(bytes.NewReader(cfgData))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r.cfg); err != nil {
		return fmt.Errorf("tufrepo: %s: %w", filepath.Join(r.dir, ConfigFile), err)
	}
	for _, role := range Roles {
		if r.cfg.Expiry.of(role) <= 0 {
			return fmt.Errorf("tufrepo: %s: expiry.%s: want a positive duration", filepath.Join(r.dir, ConfigFile), role)
		}
	}
	md := filepath.Join(r.dir, MetadataDir)
	var err error
	if r.root, err = metadata.Root().FromFile(filepath.Join(md, "root.json")); err != nil {
		return fmt.Errorf("tufrepo: %s: %w", filepath.Join(md, "root.json"), err)
	}
	if r.timestamp, err = metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json")); err != nil {
		return fmt.Errorf("tufrepo: %s: %w", filepath.Join(md, "timestamp.json"), err)
	}
	sm, ok := r.timestamp.Signed.Meta["snapshot.json"]
	if !ok {
		return fmt.Errorf("tufrepo: %s: no snapshot.json in meta", filepath.Join(md, "timestamp.json"))
	}
	p := filepath.Join(md, fmt.Sprintf("%d.snapshot.json", sm.Version))
	if r.snapshot, err = metadata.Snapshot().FromFile(p); err != nil {
		return fmt.Errorf("tufrepo: %s: %w", p, err)
	}
	tm, ok := r.snapshot.Signed.Meta["targets.json"]
	if !ok {
		return fmt.Errorf("tufrepo: %s: no targets.json in meta", p)
	}
	p = filepath.Join(md, fmt.Sprintf("%d.targets.json", tm.Version))
	if r.targets, err = metadata.Targets().FromFile(p); err != nil {
		return fmt.Errorf("tufrepo: %s: %w", p, err)
	}
	return r.loadKeys()
}

// loadKeys reads every private key in keys/ that one of the root's roles lists.
func (r *repo) loadKeys() error {
	r.keys = map[string]ed25519.PrivateKey{}
	kd := filepath.Join(r.dir, KeysDir)
	paths, err := filepath.Glob(filepath.Join(kd, "*.pem"))
	if err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("tufrepo: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("tufrepo: %s: mode %04o, want 0600 (a private key; chmod 600 it)", p, st.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("tufrepo: %w", err)
		}
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			return fmt.Errorf("tufrepo: %s: not a PEM PRIVATE KEY", p)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return fmt.Errorf("tufrepo: %s: %w", p, err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return fmt.Errorf("tufrepo: %s: %T, want an ed25519 key", p, k)
		}
		id, err := keyID(priv.Public().(ed25519.PublicKey))
		if err != nil {
			return err
		}
		if _, known := r.root.Signed.Keys[id]; !known {
			return fmt.Errorf("tufrepo: %s: key %s is not in the root metadata (a key of another repository?)", p, id[:16])
		}
		r.keys[id] = priv
	}
	return nil
}

// signable is what signing needs of any role's metadata.
type signable interface {
	signedPart() any
	signatures() *[]metadata.Signature
}

type md[T metadata.Roles] struct{ m *metadata.Metadata[T] }

func (s md[T]) signedPart() any                   { return s.m.Signed }
func (s md[T]) signatures() *[]metadata.Signature { return &s.m.Signatures }

func (r *repo) metadataOf(role string) signable {
	switch role {
	case metadata.ROOT:
		return md[metadata.RootType]{r.root}
	case metadata.TARGETS:
		return md[metadata.TargetsType]{r.targets}
	case metadata.SNAPSHOT:
		return md[metadata.SnapshotType]{r.snapshot}
	}
	return md[metadata.TimestampType]{r.timestamp}
}

// sign signs a role's metadata with every key present that the root lists for it. fresh drops
// all existing signatures (the content changed); otherwise the valid signatures of other keys
// are kept and only missing ones are added.
func (r *repo) sign(role string, fresh bool) error {
	s := r.metadataOf(role)
	payload, err := cjson.EncodeCanonical(s.signedPart())
	if err != nil {
		return fmt.Errorf("tufrepo: %s: %w", role, err)
	}
	roleKeys := r.root.Signed.Roles[role].KeyIDs
	sigs := s.signatures()
	var kept []metadata.Signature
	if !fresh {
		for _, sig := range *sigs {
			if slices.Contains(roleKeys, sig.KeyID) && r.verify(sig, payload) && !slices.ContainsFunc(kept, func(k metadata.Signature) bool { return k.KeyID == sig.KeyID }) {
				kept = append(kept, sig)
			}
		}
	}
	for _, id := range roleKeys {
		priv, ok := r.keys[id]
		if !ok || slices.ContainsFunc(kept, func(k metadata.Signature) bool { return k.KeyID == id }) {
			continue
		}
		signer, err := signature.LoadED25519Signer(priv)
		if err != nil {
			return fmt.Errorf("tufrepo: %s: key %s: %w", role, id[:16], err)
		}
		sig, err := signer.SignMessage(bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("tufrepo: %s: sign with key %s: %w", role, id[:16], err)
		}
		kept = append(kept, metadata.Signature{KeyID: id, Signature: sig})
	}
	if kept == nil {
		kept = []metadata.Signature{}
	}
	*sigs = kept
	return nil
}

// verify checks one signature over the canonical signed part against the root's key.
func (r *repo) verify(sig metadata.Signature, payload []byte) bool {
	key, ok := r.root.Signed.Keys[sig.KeyID]
	if !ok || key.Type != metadata.KeyTypeEd25519 {
		return false
	}
	pub, err := hex.DecodeString(key.Value.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, payload, sig.Signature)
}

// validSignatures counts the signatures of a role's metadata that verify with its keys.
func (r *repo) validSignatures(role string) int {
	s := r.metadataOf(role)
	payload, err := cjson.EncodeCanonical(s.signedPart())
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	for _, sig := range *s.signatures() {
		if slices.Contains(r.root.Signed.Roles[role].KeyIDs, sig.KeyID) && !seen[sig.KeyID] && r.verify(sig, payload) {
			seen[sig.KeyID] = true
		}
	}
	return len(seen)
}

// publish makes a new version of role with the given expiry (zero: the configured period from
// now), signs it, and then does the same for every role that lists it, up to timestamp.
// Everything is written before timestamp.json, which is replaced last.
func (r *repo) publish(role string, at time.Time) error {
	chain := map[string][]string{
		metadata.TARGETS:   {metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP},
		metadata.SNAPSHOT:  {metadata.SNAPSHOT, metadata.TIMESTAMP},
		metadata.TIMESTAMP: {metadata.TIMESTAMP},
	}[role]
	for i, rl := range chain {
		exp := r.expires(rl)
		if i == 0 && !at.IsZero() {
			exp = at.UTC()
		}
		switch rl {
		case metadata.TARGETS:
			r.targets.Signed.Version++
			r.targets.Signed.Expires = exp
		case metadata.SNAPSHOT:
			r.snapshot.Signed.Version++
			r.snapshot.Signed.Expires = exp
			r.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metadata.MetaFile(r.targets.Signed.Version)}
		case metadata.TIMESTAMP:
			r.timestamp.Signed.Version++
			r.timestamp.Signed.Expires = exp
			r.timestamp.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metadata.MetaFile(r.snapshot.Signed.Version)}
		}
		if err := r.sign(rl, true); err != nil {
			return err
		}
		if err := r.write(rl); err != nil {
			return err
		}
	}
	return nil
}

// fileName is where a role's current metadata is published.
func (r *repo) fileName(role string) string {
	switch role {
	case metadata.TARGETS:
		return fmt.Sprintf("%d.targets.json", r.targets.Signed.Version)
	case metadata.SNAPSHOT:
		return fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)
	case metadata.TIMESTAMP:
		return "timestamp.json"
	}
	return fmt.Sprintf("%d.root.json", r.root.Signed.Version)
}

func (r *repo) write(role string) error {
	if role == metadata.ROOT {
		return r.writeRoot()
	}
	var data []byte
	var err error
	switch role {
	case metadata.TARGETS:
		data, err = r.targets.ToBytes(true)
	case metadata.SNAPSHOT:
		data, err = r.snapshot.ToBytes(true)
	default:
		data, err = r.timestamp.ToBytes(true)
	}
	if err != nil {
		return fmt.Errorf("tufrepo: %s: %w", role, err)
	}
	return writeAtomic(filepath.Join(r.dir, MetadataDir, r.fileName(role)), append(data, '\n'), 0o644)
}

// writeRoot writes <N>.root.json and root.json: go-tuf's updater walks the numbered files from
// its trusted version up, and root.json is the newest for images and people.
func (r *repo) writeRoot() error {
	data, err := r.root.ToBytes(true)
	if err != nil {
		return fmt.Errorf("tufrepo: root: %w", err)
	}
	data = append(data, '\n')
	if err := writeAtomic(filepath.Join(r.dir, MetadataDir, r.fileName(metadata.ROOT)), data, 0o644); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(r.dir, MetadataDir, "root.json"), data, 0o644)
}

// writeAtomic replaces path with data: a reader sees the old file or the new one, whole.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("tufrepo: write %s: %w", path, err)
	}
	return nil
}

// Sign adds the signatures of the keys present to every role's current metadata, keeping the
// valid signatures already there (made with keys held elsewhere) and dropping invalid ones. It
// changes no content and no version: with a threshold above 1, each key holder runs it in turn.
func Sign(dir string) error {
	r, err := open(dir)
	if err != nil {
		return err
	}
	defer r.close()
	for _, role := range Roles {
		if err := r.sign(role, false); err != nil {
			return err
		}
	}
	// timestamp.json last, as always.
	for _, role := range Roles {
		if err := r.write(role); err != nil {
			return err
		}
	}
	return nil
}

// Refresh publishes new snapshot and timestamp versions expiring timestampFor and snapshotFor
// from now (zero: the periods chosen at init).
func Refresh(dir string, timestampFor, snapshotFor time.Duration) error {
	if timestampFor < 0 || snapshotFor < 0 {
		return fmt.Errorf("tufrepo: refresh: negative expiry")
	}
	r, err := open(dir)
	if err != nil {
		return err
	}
	defer r.close()
	if timestampFor > 0 {
		r.cfg.Expiry.Timestamp = contract.Duration(timestampFor)
	}
	if snapshotFor > 0 {
		r.cfg.Expiry.Snapshot = contract.Duration(snapshotFor)
	}
	return r.publish(metadata.SNAPSHOT, time.Time{})
}

// Expire publishes a new version of role expiring at the given time (which may be in the past:
// tests use it for an expired timestamp), re-signing the roles above it.
func Expire(dir, role string, at time.Time) error {
	if !slices.Contains(Roles, role) {
		return fmt.Errorf("tufrepo: expire: role %q: want one of %s", role, strings.Join(Roles, ", "))
	}
	if at.IsZero() {
		return fmt.Errorf("tufrepo: expire %s: no time given", role)
	}
	r, err := open(dir)
	if err != nil {
		return err
	}
	defer r.close()
	if role == metadata.ROOT {
		r.root.Signed.Version++
		r.root.Signed.Expires = at.UTC()
		if err := r.sign(metadata.ROOT, true); err != nil {
			return err
		}
		return r.writeRoot()
	}
	return r.publish(role, at)
}

// RoleStatus is one role's current metadata as Status sees it.
type RoleStatus struct {
	Role       string
	File       string // under repository/metadata
	Version    int64
	Expires    time.Time
	Signatures int // valid signatures by the role's keys
	Threshold  int
	KeysHere   int // the role's private keys present in keys/
}

// Signed reports whether the role has the signatures it needs.
func (s RoleStatus) Signed() bool { return s.Signatures >= s.Threshold }

// Status reports every role's version, expiry and signatures.
func Status(dir string) ([]RoleStatus, error) {
	r, err := open(dir)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var out []RoleStatus
	for _, role := range Roles {
		st := RoleStatus{Role: role, File: r.fileName(role), Threshold: r.root.Signed.Roles[role].Threshold, Signatures: r.validSignatures(role)}
		for _, id := range r.root.Signed.Roles[role].KeyIDs {
			if _, ok := r.keys[id]; ok {
				st.KeysHere++
			}
		}
		switch role {
		case metadata.ROOT:
			st.Version, st.Expires = r.root.Signed.Version, r.root.Signed.Expires
		case metadata.TARGETS:
			st.Version, st.Expires = r.targets.Signed.Version, r.targets.Signed.Expires
		case metadata.SNAPSHOT:
			st.Version, st.Expires = r.snapshot.Signed.Version, r.snapshot.Signed.Expires
		default:
			st.Version, st.Expires = r.timestamp.Signed.Version, r.timestamp.Signed.Expires
		}
		out = append(out, st)
	}
	return out, nil
}

// Targets lists the current targets with their lengths and sha256, sorted by name.
func Targets(dir string) ([]Target, error) {
	r, err := open(dir)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var out []Target
	for name, tf := range r.targets.Signed.Targets {
		out = append(out, Target{Name: name, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"]), Path: r.targetPath(name, hex.EncodeToString(tf.Hashes["sha256"]))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Target is one target file of the repository.
type Target struct {
	Name   string
	Length int64
	SHA256 string
	Path   string // the published file
}

// targetPath is the published file of a target: <dir>/<sha256>.<base> under repository/targets.
func (r *repo) targetPath(name, sha string) string {
	return filepath.Join(r.dir, TargetsDir, filepath.FromSlash(PublishedTargetName(name, sha)))
}

// PublishedTargetName is the path, relative to the targets URL, at which a consistent-snapshot
// repository publishes a target: its name with the sha256 of its content before the last path
// element, as go-tuf's updater fetches it.
func PublishedTargetName(name, sha256hex string) string {
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i+1], name[i+1:]
	}
	return dir + sha256hex + "." + base
}

// copyVerified copies src to dst (through a temporary file, fsynced) while checking its size
// and sha256 against the expected values. With dst already there, it only checks src.
func copyVerified(src, dst string, size int64, sha string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	if st.Size() != size {
		return fmt.Errorf("tufrepo: %s: %d bytes, payload.json says %d", src, st.Size(), size)
	}
	var out *os.File
	exists := false
	if dst != "" {
		if dt, err := os.Stat(dst); err == nil && dt.Size() == size {
			exists = true
		}
	}
	h := sha256.New()
	w := io.Writer(h)
	if !exists {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("tufrepo: %w", err)
		}
		if out, err = os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*"); err != nil {
			return fmt.Errorf("tufrepo: %w", err)
		}
		defer os.Remove(out.Name())
		defer out.Close()
		w = io.MultiWriter(h, out)
	}
	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("tufrepo: copy %s: %w", src, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("tufrepo: %s: sha256 %s, payload.json says %s", src, got, sha)
	}
	if exists {
		return nil
	}
	if err := out.Chmod(0o644); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	if err := os.Rename(out.Name(), dst); err != nil {
		return fmt.Errorf("tufrepo: %w", err)
	}
	return nil
}
