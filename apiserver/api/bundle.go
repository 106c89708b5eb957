package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/apiserver/bundle"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/kmsg"
)

// BundleSources are the files the support bundle reads besides the API's own answers; zero fields
// take the defaults in brackets.
type BundleSources struct {
	Mountinfo string // the mount table [/proc/self/mountinfo]
	Kmsg      string // the kernel's log, for dmesg [contract.KmsgPath]
}

// bundleTimeout bounds writing a support bundle: all logs, over a slow link.
const bundleTimeout = 5 * time.Minute

// getBundle answers a support bundle (package bundle): a gzip'd tar of the parts bundleParts lists.
func (h *handler) getBundle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ballast-bundle-%s.tar.gz"`, now.UTC().Format("20060102T150405Z")))
	http.NewResponseController(w).SetWriteDeadline(now.Add(bundleTimeout))
	w.WriteHeader(http.StatusOK)
	if _, err := bundle.Write(r.Context(), w, h.bundleParts(), now); err != nil {
		h.cfg.Log.Warn("support bundle", "err", err)
	}
}

// bundleParts is what a support bundle holds, in order. A part that is another request's answer
// is asked of the API itself, so an endpoint added to the route table is in the bundle as soon
// as it is served; until then the bundle says it is not available.
func (h *handler) bundleParts() []bundle.Part {
	return []bundle.Part{
		h.requestPart("os.json", "/os"),
		h.requestPart("services.json", "/services"),
		bundle.File("settings.json", h.redactedSettings),
		h.requestPart("userdata.json", "/userdata"),
		h.requestPart("configuration-files.json", "/configuration-files"),
		h.requestPart("network.json", "/network"),
		h.requestPart("time.json", "/time"),
		h.requestPart("updates.json", "/updates/status"),
		h.requestPart("report-hardening.json", "/report/hardening"),
		bundle.File("report-boot.json", h.redactedBootReport),
		bundle.File("mountinfo.txt", h.mountinfo),
		bundle.File("dmesg.txt", h.dmesg),
		{Name: "logs", Produce: h.logFiles},
	}
}

// requestPart is the answer to GET path, as a client would get it.
func (h *handler) requestPart(name, path string) bundle.Part {
	return bundle.File(name, func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		if _, pattern := h.mux.Handler(req); pattern == "" {
			return nil, bundle.NotAvailable("GET " + path + " is not served by this build")
		}
		rec := &bodyRecorder{header: http.Header{}, status: http.StatusOK}
		h.mux.ServeHTTP(rec, req)
		if rec.status >= 300 {
			msg := strings.TrimSpace(rec.body.String())
			var e struct{ Error string }
			if json.Unmarshal(rec.body.Bytes(), &e) == nil && e.Error != "" {
				msg = e.Error
			}
			if rec.status == http.StatusServiceUnavailable {
				return nil, bundle.NotAvailable(fmt.Sprintf("GET %s: %s", path, msg))
			}
			return nil, fmt.Errorf("GET %s: %d: %s", path, rec.status, msg)
		}
		return rec.body.Bytes(), nil
	})
}

// bodyRecorder keeps an in-process answer.
type bodyRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bodyRecorder) Header() http.Header { return b.header }
func (b *bodyRecorder) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}
func (b *bodyRecorder) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

// redactedSettings are the live settings with every key the model marks secret redacted.
func (h *handler) redactedSettings(context.Context) ([]byte, error) {
	b, err := json.MarshalIndent(settings.Redact(h.cfg.Store.Live()), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// redactedBootReport is GET /report/boot without /local's recovery key: a bundle travels, and the
// key opens the disk. That one waits to be acknowledged stays in (recovery_key_pending).
func (h *handler) redactedBootReport(context.Context) ([]byte, error) {
	if h.cfg.Boot == nil {
		return nil, bundle.NotAvailable("GET /report/boot: this server computes no boot report")
	}
	rep := h.cfg.Boot.Boot()
	if rep.RecoveryKey != "" {
		rep.RecoveryKey = settings.Redacted
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (h *handler) mountinfo(context.Context) ([]byte, error) {
	path := h.cfg.Bundle.Mountinfo
	if path == "" {
		path = "/proc/self/mountinfo"
	}
	return os.ReadFile(path)
}

// dmesg is what the kernel's log buffer holds now, in the host logs' line format: the kernel's
// own copy, beside the kernel log the system init keeps.
func (h *handler) dmesg(context.Context) ([]byte, error) {
	path := h.cfg.Bundle.Kmsg
	if path == "" {
		path = contract.KmsgPath
	}
	recs, err := kmsg.Snapshot(path)
	if err != nil && len(recs) == 0 {
		return nil, err
	}
	wall, mono := time.Now(), monotonic()
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(contract.LogRecord{Time: wall.Add(r.Time - mono), Mono: r.Time, Priority: r.Priority, Text: r.Message}.Format())
	}
	return []byte(b.String()), err
}

func monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// logFiles adds every file of the host logs under logs/.
func (h *handler) logFiles(ctx context.Context, w *bundle.Writer) error {
	if h.cfg.Init == nil {
		return bundle.NotAvailable("no system init")
	}
	files, err := h.cfg.Init.LogFiles()
	if err != nil {
		return err
	}
	var failed []string
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.AddFile("logs/"+f.Name, f.Path); err != nil {
			// One file rotated away or unreadable does not spoil the others.
			failed = append(failed, err.Error())
		}
	}
	if failed != nil {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
