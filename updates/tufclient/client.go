// Package tufclient is the host's client of the update repository: go-tuf's updater verifies
// the metadata (root rotation, timestamp, snapshot, targets; signatures, thresholds, expiry and
// version rollback), and the client downloads targets itself so a download can resume, is
// bounded by the length the signed metadata gives, and is counted.
package tufclient

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/ballast-os/ballast/updates/manifest"
)

// Kinds of failure, for errors.Is; the error text says what exactly.
var (
	ErrExpired = errors.New("expired metadata")
	// ErrUnsigned: metadata without enough valid signatures of keys the trusted root lists for
	// its role (signed by an unknown key, tampered, or short of the threshold).
	ErrUnsigned = errors.New("metadata not signed by enough trusted keys")
	// ErrVersion: metadata older than what the client already trusts (a rollback), or out of
	// the sequence the trusted metadata announces.
	ErrVersion = errors.New("metadata version older than one already seen or out of sequence")
	// ErrMismatch: a downloaded file whose length or hashes differ from the signed metadata.
	ErrMismatch = errors.New("content does not match the signed metadata")
	// ErrTooLarge: a response longer than the signed metadata (or the configured bound) allows;
	// the client stops reading it.
	ErrTooLarge = errors.New("response larger than the signed metadata allows")
	ErrNotFound = errors.New("no such target in the signed metadata")
)

// Config says where the repository is and where the host keeps its state.
type Config struct {
	MetadataURL string
	TargetsURL  string
	// TrustedRoot is the root.json the image carries; a newer root the client has verified and
	// cached in CacheDir takes its place.
	TrustedRoot []byte
	// CacheDir keeps the trusted metadata across restarts (on /local), so a repository serving
	// older metadata than the host has seen is caught after a reboot too.
	CacheDir string
	// DownloadDir holds partial downloads (resumed by the next Fetch) and verified targets.
	DownloadDir string
	// HTTPClient makes every request; the caller sets its proxy and timeouts. Nil: a client
	// with the default transport.
	HTTPClient *http.Client
	// MaxMetadataBytes bounds each metadata file whose length the repository does not sign
	// (zero: go-tuf's defaults, 512 KB for root up to 5 MB for targets).
	MaxMetadataBytes int64
	// Now is the time expiry is checked against (nil: time.Now).
	Now func() time.Time
}

// Client is one host's view of the repository. Its methods may be called from several
// goroutines.
type Client struct {
	cfg Config

	mu sync.Mutex
	up *updater.Updater // after the last successful Refresh

	metadataBytes atomic.Int64
	targetBytes   atomic.Int64
}

// Stats counts the bytes received from the repository: response bodies read, so a resumed
// download counts only what it fetched.
type Stats struct {
	MetadataBytes int64
	TargetBytes   int64
}

// Total is all bytes received.
func (s Stats) Total() int64 { return s.MetadataBytes + s.TargetBytes }

// New checks the configuration; nothing is fetched until Refresh.
func New(cfg Config) (*Client, error) {
	for _, u := range []struct{ name, v string }{{"metadata URL", cfg.MetadataURL}, {"targets URL", cfg.TargetsURL}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("tufclient: %s %q: want an http or https URL", u.name, u.v)
		}
	}
	if len(cfg.TrustedRoot) == 0 {
		return nil, errors.New("tufclient: no trusted root.json")
	}
	if _, err := metadata.Root().FromBytes(cfg.TrustedRoot); err != nil {
		return nil, fmt.Errorf("tufclient: trusted root.json: %w", err)
	}
	if cfg.CacheDir == "" || cfg.DownloadDir == "" {
		return nil, errors.New("tufclient: a cache and a download directory are needed")
	}
	if cfg.MaxMetadataBytes < 0 {
		return nil, fmt.Errorf("tufclient: max metadata bytes %d: negative", cfg.MaxMetadataBytes)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

// Stats returns the bytes received so far.
func (c *Client) Stats() Stats {
	return Stats{MetadataBytes: c.metadataBytes.Load(), TargetBytes: c.targetBytes.Load()}
}

func (c *Client) metadataDir() string { return filepath.Join(c.cfg.CacheDir, "metadata") }

// trustedRoot is the newest of the image's root and the cached one. The cache only ever holds
// roots go-tuf verified; one that no longer parses or verifies is passed over.
func (c *Client) trustedRoot() []byte {
	best := c.cfg.TrustedRoot
	img, err := metadata.Root().FromBytes(best)
	if err != nil {
		return best
	}
	cached, err := os.ReadFile(filepath.Join(c.metadataDir(), "root.json"))
	if err != nil {
		return best
	}
	cr, err := metadata.Root().FromBytes(cached)
	if err != nil || cr.Signed.Version <= img.Signed.Version || cr.VerifyDelegate(metadata.ROOT, cr) != nil {
		return best
	}
	return cached
}

// Refresh updates the trusted metadata from the repository: every new root version in turn,
// then timestamp, snapshot and targets. A failure leaves the previously cached metadata as it
// was, and the client without a trusted view until a Refresh succeeds.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.up = nil
	cfg, err := config.New(c.cfg.MetadataURL, c.trustedRoot())
	if err != nil {
		return fmt.Errorf("tufclient: %w", err)
	}
	cfg.LocalMetadataDir = c.metadataDir()
	cfg.LocalTargetsDir = c.cfg.DownloadDir
	cfg.RemoteTargetsURL = c.cfg.TargetsURL
	cfg.Fetcher = &metadataFetcher{ctx: ctx, c: c}
	if n := c.cfg.MaxMetadataBytes; n > 0 {
		cfg.RootMaxLength, cfg.TimestampMaxLength, cfg.SnapshotMaxLength, cfg.TargetsMaxLength = n, n, n, n
	}
	up, err := updater.New(cfg)
	if err != nil {
		return fmt.Errorf("tufclient: trusted metadata in %s: %w", c.cfg.CacheDir, err)
	}
	now := c.cfg.Now().UTC()
	up.UnsafeSetRefTime(now)
	if err := up.Refresh(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("tufclient: refresh from %s: %w", c.cfg.MetadataURL, ctx.Err())
		}
		return fmt.Errorf("tufclient: refresh from %s: %w", c.cfg.MetadataURL, classify(err, up, now))
	}
	c.up = up
	return nil
}

// classify puts go-tuf's error under one of the package's kinds and, for expiry, says what
// expired when.
func classify(err error, up *updater.Updater, now time.Time) error {
	var kind error
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		return fmt.Errorf("%w: %s: %w", ErrExpired, expiredDetail(up, now), err)
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		kind = ErrUnsigned
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		kind = ErrVersion
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		kind = ErrMismatch
	case errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		kind = ErrTooLarge
	default:
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

func expiredDetail(up *updater.Updater, now time.Time) string {
	tm := up.GetTrustedMetadataSet()
	at := now.Format(time.RFC3339)
	switch {
	case tm.Root != nil && tm.Root.Signed.IsExpired(now):
		return fmt.Sprintf("root.json version %d expired at %s (now %s)", tm.Root.Signed.Version, tm.Root.Signed.Expires.Format(time.RFC3339), at)
	case tm.Timestamp != nil && tm.Timestamp.Signed.IsExpired(now):
		return fmt.Sprintf("timestamp.json version %d expired at %s (now %s)", tm.Timestamp.Signed.Version, tm.Timestamp.Signed.Expires.Format(time.RFC3339), at)
	case tm.Snapshot != nil && tm.Snapshot.Signed.IsExpired(now):
		return fmt.Sprintf("snapshot.json version %d expired at %s (now %s)", tm.Snapshot.Signed.Version, tm.Snapshot.Signed.Expires.Format(time.RFC3339), at)
	}
	return "at " + at
}

// updater returns the verified view, refreshing first if there is none.
func (c *Client) updater(ctx context.Context) (*updater.Updater, error) {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	if up != nil {
		return up, nil
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up, nil
}

// Target is a target as the signed targets metadata describes it.
type Target struct {
	Name   string
	Length int64
	SHA256 string
	hashes metadata.Hashes
	url    string
}

var targetNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~-]+)*$`)

// Target looks a target up in the verified metadata (refreshing first if there is none).
func (c *Client) Target(ctx context.Context, name string) (Target, error) {
	if !targetNamePattern.MatchString(name) || strings.Contains("/"+name+"/", "/../") || strings.Contains("/"+name+"/", "/./") {
		return Target{}, fmt.Errorf("tufclient: target name %q: want slash-separated letters, digits, '.', '_', '~' or '-'", name)
	}
	up, err := c.updater(ctx)
	if err != nil {
		return Target{}, err
	}
	tf, ok := up.GetTopLevelTargets()[name]
	if !ok {
		return Target{}, fmt.Errorf("tufclient: target %s: %w", name, ErrNotFound)
	}
	sum, ok := tf.Hashes["sha256"]
	if !ok || len(sum) != sha256.Size {
		return Target{}, fmt.Errorf("tufclient: target %s: the signed metadata has no sha256", name)
	}
	for alg := range tf.Hashes {
		if alg != "sha256" && alg != "sha512" {
			return Target{}, fmt.Errorf("tufclient: target %s: hash %q: only sha256 and sha512 are checked", name, alg)
		}
	}
	if tf.Length < 0 {
		return Target{}, fmt.Errorf("tufclient: target %s: negative length %d", name, tf.Length)
	}
	t := Target{Name: name, Length: tf.Length, SHA256: hex.EncodeToString(sum), hashes: tf.Hashes}
	// With consistent snapshots a target is published as <dir>/<sha256>.<base> (as go-tuf's
	// own download does); otherwise under its name.
	remote := name
	if up.GetTrustedMetadataSet().Root.Signed.ConsistentSnapshot {
		dir, base := path.Split(name)
		remote = dir + t.SHA256 + "." + base
	}
	segs := strings.Split(remote, "/")
	for i := range segs {
		segs[i] = url.PathEscape(segs[i])
	}
	t.url = strings.TrimSuffix(c.cfg.TargetsURL, "/") + "/" + strings.Join(segs, "/")
	return t, nil
}

// Manifest returns the verified manifest of a variant for an architecture (manifest.TargetName).
func (c *Client) Manifest(ctx context.Context, variant, arch string) (*manifest.Manifest, error) {
	t, err := c.Target(ctx, manifest.TargetName(variant, arch))
	if err != nil {
		return nil, err
	}
	var buf memFile
	h := newHashes(t.hashes)
	if _, err := c.get(ctx, t, 0, &buf, h, nil); err != nil {
		return nil, err
	}
	if err := h.check(t); err != nil {
		return nil, err
	}
	m, err := manifest.Parse(buf.b)
	if err != nil {
		return nil, fmt.Errorf("tufclient: %s: %w", t.Name, err)
	}
	if m.Variant != variant {
		return nil, fmt.Errorf("tufclient: %s: the manifest is variant %q's", t.Name, m.Variant)
	}
	return m, nil
}

// Fetch downloads a target into DownloadDir and returns the path of the verified file. A partial
// file left by an interrupted Fetch is resumed with an HTTP Range request; a file already
// complete is not downloaded again. No more bytes than the signed length are ever read, and a
// file whose length or hashes differ from the signed metadata is deleted. progress, if not nil,
// is called as bytes arrive with the bytes present and the target's length.
func (c *Client) Fetch(ctx context.Context, targetName string, progress func(done, total int64)) (string, error) {
	t, err := c.Target(ctx, targetName)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.cfg.DownloadDir, 0o700); err != nil {
		return "", fmt.Errorf("tufclient: %w", err)
	}
	final := filepath.Join(c.cfg.DownloadDir, t.SHA256+"."+path.Base(t.Name))
	if ok, err := verifyFile(final, t); err != nil {
		return "", err
	} else if ok {
		if progress != nil {
			progress(t.Length, t.Length)
		}
		return final, nil
	}
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("tufclient: %w", err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("tufclient: %s: %w", part, err)
	}
	h := newHashes(t.hashes)
	if have > t.Length {
		have = 0
	} else if have > 0 {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", fmt.Errorf("tufclient: %s: %w", part, err)
		}
		if _, err := io.CopyN(h, f, have); err != nil {
			return "", fmt.Errorf("tufclient: %s: %w", part, err)
		}
	}
	if err := f.Truncate(have); err != nil {
		return "", fmt.Errorf("tufclient: %s: %w", part, err)
	}
	if have < t.Length {
		w := &fileAt{f: f, off: have}
		if _, err := c.get(ctx, t, have, w, h, progress); err != nil {
			if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMismatch) {
				os.Remove(part)
			}
			return "", err
		}
	}
	if err := h.check(t); err != nil {
		os.Remove(part)
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("tufclient: %s: %w", part, err)
	}
	if err := os.Rename(part, final); err != nil {
		return "", fmt.Errorf("tufclient: %w", err)
	}
	if d, err := os.Open(c.cfg.DownloadDir); err == nil {
		d.Sync()
		d.Close()
	}
	return final, nil
}

// verifyFile reports whether path holds the target, whole and matching its hashes.
func verifyFile(path string, t Target) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tufclient: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != t.Length {
		return false, nil
	}
	h := newHashes(t.hashes)
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("tufclient: %s: %w", path, err)
	}
	return h.check(t) == nil, nil
}

// get requests the target from offset from and writes what arrives to w, at most the rest of
// its signed length, feeding h. It returns the bytes written.
func (c *Client) get(ctx context.Context, t Target, from int64, w writerTruncater, h *hashes, progress func(done, total int64)) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return 0, fmt.Errorf("tufclient: target %s: %w", t.Name, err)
	}
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("tufclient: target %s: %w", t.Name, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && from > 0:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return 0, fmt.Errorf("tufclient: target %s: %w", t.Name, err)
		}
		if start != from {
			return 0, fmt.Errorf("tufclient: target %s: asked for bytes from %d, got from %d", t.Name, from, start)
		}
		if total > t.Length {
			return 0, fmt.Errorf("tufclient: target %s: %w: the server has %d bytes, the signed length is %d", t.Name, ErrTooLarge, total, t.Length)
		}
	case resp.StatusCode == http.StatusOK:
		if from > 0 {
			// The server ignored the range: start over.
			if err := w.Truncate(0); err != nil {
				return 0, fmt.Errorf("tufclient: target %s: %w", t.Name, err)
			}
			h.reset()
			from = 0
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && from > 0:
		// The partial file is longer than what the server has: it was not this target.
		w.Truncate(0)
		return 0, fmt.Errorf("tufclient: target %s: the server refused to resume at byte %d (%s); the partial download was dropped", t.Name, from, resp.Status)
	default:
		return 0, fmt.Errorf("tufclient: target %s: GET %s: %s", t.Name, t.url, resp.Status)
	}
	want := t.Length - from
	if resp.ContentLength > want {
		return 0, fmt.Errorf("tufclient: target %s: %w: %d bytes announced, %d expected", t.Name, ErrTooLarge, resp.ContentLength, want)
	}
	buf := make([]byte, 64<<10)
	var got int64
	body := io.LimitReader(resp.Body, want+1)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			c.targetBytes.Add(int64(n))
			if got+int64(n) > want {
				return got, fmt.Errorf("tufclient: target %s: %w: more than the %d bytes of the signed length", t.Name, ErrTooLarge, t.Length)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return got, fmt.Errorf("tufclient: target %s: %w", t.Name, err)
			}
			h.Write(buf[:n])
			got += int64(n)
			if progress != nil {
				progress(from+got, t.Length)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return got, fmt.Errorf("tufclient: target %s: after %d of %d bytes (kept for resume): %w", t.Name, from+got, t.Length, rerr)
		}
	}
	if got < want {
		return got, fmt.Errorf("tufclient: target %s: the response ended after %d of %d bytes (kept for resume)", t.Name, from+got, t.Length)
	}
	return got, nil
}

var contentRangePattern = regexp.MustCompile(`^bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)$`)

// parseContentRange reads "bytes start-end/total"; total is -1 when unknown.
func parseContentRange(s string) (start, total int64, err error) {
	m := contentRangePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("partial response with Content-Range %q", s)
	}
	start, _ = strconv.ParseInt(m[1], 10, 64)
	total = -1
	if m[3] != "*" {
		total, _ = strconv.ParseInt(m[3], 10, 64)
	}
	return start, total, nil
}

// hashes computes every hash the metadata lists for a target.
type hashes struct {
	n    int64
	algs map[string]hash.Hash
}

func newHashes(want metadata.Hashes) *hashes {
	h := &hashes{algs: map[string]hash.Hash{}}
	for alg := range want {
		switch alg {
		case "sha256":
			h.algs[alg] = sha256.New()
		case "sha512":
			h.algs[alg] = sha512.New()
		}
	}
	return h
}

func (h *hashes) Write(p []byte) (int, error) {
	for _, a := range h.algs {
		a.Write(p)
	}
	h.n += int64(len(p))
	return len(p), nil
}

func (h *hashes) reset() {
	for _, a := range h.algs {
		a.Reset()
	}
	h.n = 0
}

// check compares what was hashed with the signed length and hashes.
func (h *hashes) check(t Target) error {
	if h.n != t.Length {
		return fmt.Errorf("tufclient: target %s: %w: %d bytes, the signed length is %d", t.Name, ErrMismatch, h.n, t.Length)
	}
	for alg, want := range t.hashes {
		a, ok := h.algs[alg]
		if !ok {
			return fmt.Errorf("tufclient: target %s: hash %q not supported", t.Name, alg)
		}
		if got := a.Sum(nil); hex.EncodeToString(got) != hex.EncodeToString(want) {
			return fmt.Errorf("tufclient: target %s: %w: %s %x, the signed metadata says %x", t.Name, ErrMismatch, alg, got, []byte(want))
		}
	}
	return nil
}

type writerTruncater interface {
	io.Writer
	Truncate(size int64) error
}

// resumeSync is how much of a download may sit unsynced in the page cache: a power cut loses
// at most that much, and the download resumes from what reached the disk.
const resumeSync = 4 << 20

// fileAt writes to f from off on, syncing every resumeSync bytes.
type fileAt struct {
	f        *os.File
	off      int64
	unsynced int64
}

func (w *fileAt) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	if w.unsynced += int64(n); err == nil && w.unsynced >= resumeSync {
		err = w.f.Sync()
		w.unsynced = 0
	}
	return n, err
}

func (w *fileAt) Truncate(size int64) error {
	w.off = size
	return w.f.Truncate(size)
}

type memFile struct{ b []byte }

func (m *memFile) Write(p []byte) (int, error) { m.b = append(m.b, p...); return len(p), nil }
func (m *memFile) Truncate(size int64) error   { m.b = m.b[:size]; return nil }

// metadataFetcher is go-tuf's fetcher over the client's HTTP client and context, counting bytes
// and never reading more than maxLength.
type metadataFetcher struct {
	ctx context.Context
	c   *Client
}

func (f *metadataFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, urlPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: urlPath}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: %d bytes announced, at most %d allowed", urlPath, resp.ContentLength, maxLength)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	f.c.metadataBytes.Add(int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", urlPath, err)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than the %d bytes allowed", urlPath, maxLength)}
	}
	return data, nil
}
