package installer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Medium is a read-only store of the installer's files: the installer medium's ISO9660 volume,
// a NoCloud volume, or the network boot directory.
type Medium interface {
	// Open opens the file at the slash-separated path from the medium's root and returns its
	// size, or -1 when the medium cannot tell beforehand. A missing file is an error wrapping
	// fs.ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, int64, error)
}

// MediumOpener reads the ISO9660 file system on a block device as a Medium.
type MediumOpener func(dev io.ReaderAt) (Medium, error)

// File is one file of a volume VolumeWriter makes.
type File struct {
	Path string
	Data []byte
}

// VolumeWriter writes an ISO9660 volume labelled label holding files, with modTime on every
// entry, through w from offset 0, and returns its size.
type VolumeWriter func(w io.WriterAt, label string, modTime time.Time, files []File) (int64, error)

const manifestMax = 1 << 20 // install.json is a few KiB; this only bounds a garbage file

// source is where the installer reads from.
type source struct {
	medium Medium
	dev    *os.File // the installer medium's block device; nil for a network install
	desc   string   // for messages: "/dev/sr0 (BALLAST_INSTALL)" or the URL
}

func (s source) Close() error {
	if s.dev != nil {
		return s.dev.Close()
	}
	return nil
}

// openSource finds the installer's source: the URL of ParamInstallSource (after bringing the
// network up), else the block device whose ISO9660 volume is InstallVolumeID.
func openSource(ctx context.Context, cfg *Config) (source, error) {
	if raw, ok := cfg.Cmdline.Get(contract.ParamInstallSource); ok {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return source{}, fmt.Errorf("%s=%s: want an http(s) URL of %s", contract.ParamInstallSource, raw, contract.InstallManifestFile)
		}
		if cfg.Network != nil {
			if err := cfg.Network(ctx); err != nil {
				return source{}, fmt.Errorf("network for %s: %w", raw, err)
			}
		}
		return source{medium: &httpMedium{base: u, client: cfg.HTTPClient}, desc: raw}, nil
	}
	if cfg.OpenMedium == nil {
		return source{}, errors.New("no ISO9660 reader configured for the installer medium")
	}
	deadline := time.Now().Add(cfg.MediumWait)
	for {
		d, err := findVolume(cfg.SysDir, cfg.DevDir, contract.InstallVolumeID)
		if err == nil {
			f, err := os.Open(d.Dev)
			if err != nil {
				return source{}, fmt.Errorf("installer medium: %w", err)
			}
			m, err := cfg.OpenMedium(f)
			if err != nil {
				f.Close()
				return source{}, fmt.Errorf("installer medium %s: %w", d.Dev, err)
			}
			return source{medium: m, dev: f, desc: fmt.Sprintf("%s (%s)", d.Dev, contract.InstallVolumeID)}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) || !time.Now().Before(deadline) {
			return source{}, fmt.Errorf("installer medium: %w after %s", err, cfg.MediumWait)
		}
		if cfg.Rescan != nil {
			cfg.Rescan()
		}
		select {
		case <-ctx.Done():
			return source{}, ctx.Err()
		case <-time.After(cfg.PollInterval):
		}
	}
}

// findVolume returns the first whole disk, in name order, with an ISO9660 volume of the given ID.
// The medium is a whole disk even on a USB stick: the ISO is hybrid, its ISO9660 volume starts at
// the disk's start, and the partitions the kernel finds in its GPT are only for the firmware.
func findVolume(sysDir, devDir, id string) (Disk, error) {
	disks, err := listDisks(sysDir, devDir)
	if err != nil {
		return Disk{}, err
	}
	for _, d := range disks {
		if d.Size == 0 {
			continue
		}
		if got, _ := volumeID(d.Dev); got == id {
			return d, nil
		}
	}
	return Disk{}, fmt.Errorf("no disk holds the ISO9660 volume %s: %w", id, fs.ErrNotExist)
}

// volumeID reads the ISO9660 volume ID of the device at path, "" if it has none.
func volumeID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 16*2048+72)
	if err := readAtFull(f, b, 0); err != nil {
		return "", err
	}
	return isoVolumeID(b), nil
}

// readManifest reads and checks install.json from the source.
func readManifest(ctx context.Context, m Medium) (*contract.InstallManifest, error) {
	b, err := readFile(ctx, m, contract.InstallManifestFile, manifestMax)
	if err != nil {
		return nil, err
	}
	return contract.ParseInstallManifest(b)
}

// readFile reads a whole file of at most max bytes from a medium.
func readFile(ctx context.Context, m Medium, name string, max int64) ([]byte, error) {
	rc, size, err := m.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > max {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, size, max)
	}
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed", name, max)
	}
	return b, nil
}

// httpMedium is the network boot directory: files relative to the URL of install.json.
type httpMedium struct {
	base   *url.URL
	client *http.Client
}

func (h *httpMedium) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	ref, err := url.Parse(path.Clean(name))
	if err != nil || ref.IsAbs() || ref.Host != "" {
		return nil, 0, fmt.Errorf("%s: not a relative file name", name)
	}
	u := h.base.ResolveReference(ref)
	if name == contract.InstallManifestFile && !strings.HasSuffix(h.base.Path, "/") {
		u = h.base // the parameter names install.json itself
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", u, err)
	}
	client := h.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err // names the URL already
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %s: %w", u, resp.Status, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%s: %s", u, resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}
