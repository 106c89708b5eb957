package tufrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/updates/manifest"
)

// PayloadDir is where a build keeps its update payload: payload.json and its files.
const PayloadDir = "update"

// ReadPayload reads <buildDir>/update/payload.json strictly and checks its fields.
func ReadPayload(buildDir string) (*contract.Payload, error) {
	path := filepath.Join(buildDir, PayloadDir, "payload.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("tufrepo: %s: no update payload (is %s a build directory of a variant with updates?)", path, buildDir)
		}
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p contract.Payload
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("tufrepo: %s: trailing data after the JSON object", path)
	}
	if err := manifest.ValidatePayload(&p); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", path, err)
	}
	return &p, nil
}

// Add publishes the build in buildDir as a release: it checks every payload file against
// payload.json, copies the files into the targets (a file already there under its
// content-addressed name is not copied again), appends the release to manifests/<variant>.json
// with its notes and waves (a version already listed is refused), sets max_version when given
// (empty leaves it as it is; a manifest without one lets hosts take any version), and signs new
// targets, snapshot and timestamp versions.
//
// The release's migrations say how the datastore format changes from the previous release's.
func Add(dir, buildDir, notes string, waves []manifest.Wave, maxVersion string) (*manifest.Release, error) {
	p, err := ReadPayload(buildDir)
	if err != nil {
		return nil, err
	}
	if err := manifest.ValidateWaves(waves); err != nil {
		return nil, fmt.Errorf("tufrepo: add %s: %w", p.Version, err)
	}
	if maxVersion != "" {
		if _, err := manifest.ParseVersion(maxVersion); err != nil {
			return nil, fmt.Errorf("tufrepo: add: max version: %w", err)
		}
	}
	r, err := open(dir)
	if err != nil {
		return nil, err
	}
	defer r.close()

	mname := manifest.TargetName(p.Variant, p.Arch)
	m, err := r.manifest(p.Variant, p.Arch)
	if err != nil {
		return nil, err
	}

	if old := m.Release(p.Version); old != nil {
		return nil, fmt.Errorf("tufrepo: add: %s %s is already in %s (released %s); a version is published once", p.Variant, p.Version, mname, old.Released.Format("2006-01-02T15:04:05Z07:00"))
	}
	rel := manifest.Release{
		Version: p.Version, Arch: p.Arch, Released: r.now, Notes: notes, Waves: waves,
		DatastoreFormat: p.DatastoreFormat, Migrations: migrations(m, p), Payload: *p,
	}
	m.Releases = append(m.Releases, rel)
	if maxVersion != "" {
		m.MaxVersion = maxVersion
	}
	mdata, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("tufrepo: add %s: %w", p.Version, err)
	}

	// Files first, metadata after: a target file nobody lists yet is harmless.
	for _, f := range manifest.Files(p) {
		if old, ok := r.targets.Signed.Targets[f.Name]; ok && (old.Length != f.Size || hex.EncodeToString(old.Hashes["sha256"]) != f.SHA256) {
			return nil, fmt.Errorf("tufrepo: add: target %s is already published with other content", f.Name)
		}
		src := filepath.Join(buildDir, PayloadDir, f.Name)
		if err := copyVerified(src, r.targetPath(f.Name, f.SHA256), f.Size, f.SHA256); err != nil {
			return nil, err
		}
		r.addTarget(f.Name, f.Size, f.SHA256)
	}
	sum := sha256.Sum256(mdata)
	msha := hex.EncodeToString(sum[:])
	mpath := r.targetPath(mname, msha)
	if err := os.MkdirAll(filepath.Dir(mpath), 0o755); err != nil {
		return nil, fmt.Errorf("tufrepo: %w", err)
	}
	if err := writeAtomic(mpath, mdata, 0o644); err != nil {
		return nil, err
	}
	r.addTarget(mname, int64(len(mdata)), msha)
	if err := r.publish(metadata.TARGETS, time.Time{}); err != nil {
		return nil, err
	}
	return &m.Releases[len(m.Releases)-1], nil
}

func (r *repo) addTarget(name string, length int64, sha string) {
	h, _ := hex.DecodeString(sha)
	r.targets.Signed.Targets[name] = &metadata.TargetFiles{Length: length, Hashes: metadata.Hashes{"sha256": h}, Path: name}
}

// manifest reads the variant's current manifest from the published targets (checking it against
// the targets metadata), or starts an empty one.
func (r *repo) manifest(variant, arch string) (*manifest.Manifest, error) {
	name := manifest.TargetName(variant, arch)
	tf, ok := r.targets.Signed.Targets[name]
	if !ok {
		return &manifest.Manifest{Variant: variant}, nil
	}
	path := r.targetPath(name, hex.EncodeToString(tf.Hashes["sha256"]))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", name, err)
	}
	if err := tf.VerifyLengthHashes(data); err != nil {
		return nil, fmt.Errorf("tufrepo: %s: does not match the targets metadata: %w", path, err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tufrepo: %s: %w", path, err)
	}
	if m.Variant != variant {
		return nil, fmt.Errorf("tufrepo: %s: variant %q, want %q", path, m.Variant, variant)
	}
	return m, nil
}

// Manifest returns a variant's current manifest for an architecture ("" for amd64) as published
// in the repository in dir.
func Manifest(dir, variant, arch string) (*manifest.Manifest, error) {
	r, err := open(dir)
	if err != nil {
		return nil, err
	}
	defer r.close()
	if _, ok := r.targets.Signed.Targets[manifest.TargetName(variant, arch)]; !ok {
		return nil, fmt.Errorf("tufrepo: %s: no %s", dir, manifest.TargetName(variant, arch))
	}
	return r.manifest(variant, arch)
}

// migrations describes the datastore format change from the release just below p's version.
func migrations(m *manifest.Manifest, p *contract.Payload) []string {
	v, err := manifest.ParseVersion(p.Version)
	if err != nil {
		return nil
	}
	var prev *manifest.Release
	var pv manifest.Version
	for i := range m.Releases {
		w, err := manifest.ParseVersion(m.Releases[i].Version)
		if err != nil || w.Compare(v) >= 0 {
			continue
		}
		if prev == nil || w.Compare(pv) > 0 {
			prev, pv = &m.Releases[i], w
		}
	}
	if prev == nil || prev.DatastoreFormat == p.DatastoreFormat {
		return []string{}
	}
	dir := "upgrade"
	if p.DatastoreFormat < prev.DatastoreFormat {
		dir = "downgrade"
	}
	return []string{strings.TrimSpace(fmt.Sprintf("datastore format %d -> %d (%s from %s)", prev.DatastoreFormat, p.DatastoreFormat, dir, prev.Version))}
}
