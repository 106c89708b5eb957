package agent

import (
	"context"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Settings are the host's settings.updates.*, read at every action since they can change.
type Settings struct {
	MetadataBaseURL string
	TargetsBaseURL  string
	VersionLock     string // "latest" (or empty) or a version
	IgnoreWaves     bool
	Seed            int // 0-2047, drawn at first boot
}

// Query is what the agent asks the repository: the release this host may take now.
type Query struct {
	Variant string
	Arch    string
	Current string // the running version
	Lock    string // "latest" or a version
	Seed    int
	// IgnoreWaves takes the release even when its wave has not reached this host's seed yet.
	IgnoreWaves bool
	Now         time.Time
}

// Release is one version of the variant in the repository's manifest.
type Release struct {
	Version string
	Notes   string
	// Payload is the release's payload.json, as the signed manifest (or its own signed target)
	// gives it: the hashes every downloaded file is checked against.
	Payload contract.Payload
}

// Choice is the repository's answer to a Query.
type Choice struct {
	// Available lists the versions of the variant the manifest has, in the manifest's order.
	Available []string
	// Release is the release to take now; nil when the host is up to date or waits for a wave.
	Release *Release
	// Waiting is the release the host would take but whose wave has not reached it yet, and
	// WaveOpensAt when it will.
	Waiting     *Release
	WaveOpensAt time.Time
}

// Repo is the update repository as the agent uses it: TUF metadata refreshed and verified
// (signatures, thresholds, expiry, rollback of versions), the variant's manifest read from it,
// and targets downloaded and verified against it. The agent makes one per action from the
// current Settings (Config.Repo), so changed URLs take effect at the next action.
//
// The real one wraps updates/tufclient and updates/manifest: Choose is Refresh, Manifest(variant)
// and Manifest.Choose(current, lock, seed, ignoreWaves, now); Fetch and BytesDownloaded are the
// client's.
type Repo interface {
	Choose(ctx context.Context, q Query) (Choice, error)
	// Fetch downloads the target name (a payload file name), resuming what an earlier call left,
	// verifies it against the signed metadata, and returns the path of the verified file.
	// progress, when set, is told the bytes of this target so far and its length.
	Fetch(ctx context.Context, name string, progress func(done, total int64)) (string, error)
	// BytesDownloaded is how many bytes this Repo has downloaded, metadata included. Status
	// calls it while Fetch runs in another goroutine.
	BytesDownloaded() int64
}
