package settings

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ballast-os/ballast/contract"
)

// Updates is settings.updates.
type Updates struct {
	MetadataBaseURL *RepositoryURL `json:"metadata-base-url,omitempty" max:"2048" doc:"Base URL of the update repository's TUF metadata (root.json, timestamp.json, ...). Unset: the image's default (image.json updates.metadata_base_url)."`
	TargetsBaseURL  *RepositoryURL `json:"targets-base-url,omitempty" max:"2048" doc:"Base URL of the update repository's targets (manifest, payload files). Unset: the image's default (image.json updates.targets_base_url)."`
	VersionLock     *VersionLock   `json:"version-lock,omitempty" doc:"The version to run: latest (the default) takes the newest version the waves allow; a version is moved to, up or down, and kept."`
	IgnoreWaves     *bool          `json:"ignore-waves,omitempty" doc:"Take a new version as soon as it is published instead of when this host's wave opens. Unset: false."`
	Seed            *int64         `json:"seed,omitempty" min:"0" max:"2047" doc:"This host's place in a version's waves: a wave opens for the seeds below its bound. Set at random at the first start that finds it unset, then kept like any setting."`
}

// MaxUpdateSeed is the largest settings.updates.seed: seeds are 0 to MaxUpdateSeed, as
// Bottlerocket's are, so a wave schedule can say how many hosts in 2048 take a version by when.
const MaxUpdateSeed = 2047

// RepositoryURL is an update repository's base URL: http or https, a host, any path; no user,
// query or fragment (the agent appends file names to the path).
type RepositoryURL string

func (u RepositoryURL) check() error {
	_, err := u.URL()
	return err
}

// URL returns the parsed URL.
func (u RepositoryURL) URL() (*url.URL, error) {
	s := string(u)
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%q contains spaces or control characters", s)
	}
	p, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if p.Scheme != "http" && p.Scheme != "https" || p.Host == "" || p.Opaque != "" {
		return nil, fmt.Errorf("%q: want http(s)://host[:port][/path]", s)
	}
	if p.User != nil || p.RawQuery != "" || p.ForceQuery || p.Fragment != "" {
		return nil, fmt.Errorf("%q: a repository URL has no user, query or fragment", s)
	}
	return p, nil
}
func (RepositoryURL) describe() typeSpec {
	return typeSpec{name: "http(s) URL", schema: stringSchema(map[string]any{"format": "uri", "pattern": "^https?://"})}
}

// LatestVersion is the version-lock that follows the newest version.
const LatestVersion = "latest"

// VersionLock is "latest" or an image version (contract.ValidateVersion).
type VersionLock string

func (v VersionLock) check() error {
	if v == LatestVersion {
		return nil
	}
	if err := contract.ValidateVersion(string(v)); err != nil {
		return fmt.Errorf("neither %q nor a version: %w", LatestVersion, err)
	}
	return nil
}
func (VersionLock) describe() typeSpec {
	return typeSpec{name: "\"latest\" or a version", schema: stringSchema(map[string]any{"pattern": versionLockPattern})}
}

// versionLockPattern is the schema's form of VersionLock.check; a test holds them together.
const versionLockPattern = `^(latest|[0-9A-Za-z][0-9A-Za-z.~_-]{0,63})$`
