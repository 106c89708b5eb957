package debian

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ballast-os/ballast/packages/digest"
)

// DefaultMirror is used unless the caller (variant, flag or BALLAST_DEBIAN_MIRROR) says otherwise.
const DefaultMirror = "http://deb.debian.org/debian"

// DefaultSecurityMirror serves the security suites, which deb.debian.org keeps apart from the
// main archive.
const DefaultSecurityMirror = "http://deb.debian.org/debian-security"

// Fetcher downloads pinned packages into a cache directory keyed by sha256, so a cached file is
// re-verified by name and never trusted by its URL.
type Fetcher struct {
	// Mirror replaces DefaultMirror: it serves packages of sources whose URL is DefaultMirror and
	// of lock files without sources. Other sources (the security archive) keep their own URL.
	Mirror string
	// Sources are the lock's [[source]] tables (Lock.Sources); a package naming a source is
	// fetched from that source's URL.
	Sources  []Source
	CacheDir string
	Client   *http.Client
	// Progress, when set, is told about each download.
	Progress func(pkg string, done, total int64)
}

// CacheDir returns the download cache: $BALLAST_CACHE, else $XDG_CACHE_HOME/ballast, else ~/.cache/ballast.
func CacheDir() string {
	if d := os.Getenv("BALLAST_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ballast")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "ballast")
	}
	return filepath.Join(os.TempDir(), "ballast-cache")
}

// Path returns the cached file of p, downloading and verifying it first when needed.
func (f *Fetcher) Path(ctx context.Context, p Package) (string, error) {
	dir := filepath.Join(f.CacheDir, "debs")
	dst := filepath.Join(dir, p.SHA256+".deb")
	if sum, err := digest.File(dst); err == nil {
		if sum == p.SHA256 {
			return dst, nil
		}
		os.Remove(dst) // a damaged cache entry is refetched, never used
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("debian: cache %s: %w", dir, err)
	}
	base, err := f.BaseURL(p)
	if err != nil {
		return "", err
	}
	url := strings.TrimSuffix(base, "/") + "/" + p.Filename
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", fmt.Errorf("debian: %s: %w", p.label(), err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := f.download(ctx, url, p, tmp); err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	got, err := digest.Reader(tmp)
	if err != nil {
		return "", fmt.Errorf("debian: %s: %w", p.label(), err)
	}
	if got != p.SHA256 {
		return "", fmt.Errorf("debian: package %s %s from %s: sha256 %s, lock file pins %s", p.label(), p.Version, url, got, p.SHA256)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("debian: %s: %w", p.label(), err)
	}
	return dst, nil
}

// BaseURL is the archive root p is downloaded from: its source's URL, or Mirror for the main archive.
func (f *Fetcher) BaseURL(p Package) (string, error) {
	base := DefaultMirror
	if p.Source != "" {
		i := slices.IndexFunc(f.Sources, func(s Source) bool { return s.Name == p.Source })
		if i < 0 {
			return "", fmt.Errorf("debian: package %s: source %q unknown to the fetcher (set Fetcher.Sources from the lock)", p.label(), p.Source)
		}
		base = f.Sources[i].URL
	}
	if f.Mirror != "" && strings.TrimSuffix(base, "/") == DefaultMirror {
		base = f.Mirror
	}
	return base, nil
}

func (f *Fetcher) download(ctx context.Context, url string, p Package, w io.Writer) error {
	client := f.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("debian: %s: %w", p.label(), err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("debian: fetch %s: %w", p.label(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("debian: fetch %s from %s: %s", p.label(), url, resp.Status)
	}
	var src io.Reader = resp.Body
	if f.Progress != nil {
		src = &progressReader{r: resp.Body, name: p.Name, total: p.Size, fn: f.Progress}
	}
	// Read at most one byte more than pinned so an oversized answer is caught by the hash, not by the disk.
	if _, err := io.Copy(w, io.LimitReader(src, p.Size+1)); err != nil {
		return fmt.Errorf("debian: fetch %s: %w", p.label(), err)
	}
	return nil
}

type progressReader struct {
	r           io.Reader
	name        string
	done, total int64
	fn          func(string, int64, int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.fn(p.name, p.done, p.total)
	return n, err
}

// label names a package and its architecture in errors: the same name is pinned once per
// architecture.
func (p Package) label() string {
	if p.Arch == "" {
		return p.Name
	}
	return p.Name + " (" + p.Arch + ")"
}
