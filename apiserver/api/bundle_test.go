package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/bundle"
	"github.com/ballast-os/ballast/apiserver/settings"
)

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = string(data)
	}
}

func TestBundle(t *testing.T) {
	f := newFixture(t)
	secret := "c2VjcmV0IHRva2VuIGZvciB0aGUgYWRtaW4gY29udGFpbmVy" // base64 of a token
	f.do(t, "PATCH", "/settings", `{"motd":"hello","host-containers":{"admin":{"user-data":"`+secret+`","enabled":false}}}`)
	if rec := f.do(t, "POST", "/tx/commit", ""); rec.Code != 200 {
		t.Fatalf("commit: %d %s", rec.Code, rec.Body)
	}
	os.WriteFile(filepath.Join(f.logDir, "kernel.log.1"), []byte("k1\n"), 0o644)
	os.WriteFile(filepath.Join(f.logDir, "kernel.log"), []byte("k2\n"), 0o644)

	req, _ := http.NewRequest("GET", "/logs/bundle", nil)
	rec := &bodyRecorder{header: http.Header{}, status: 200}
	f.h.ServeHTTP(rec, req)
	if rec.status != 200 || rec.header.Get("Content-Type") != "application/gzip" ||
		!strings.HasPrefix(rec.header.Get("Content-Disposition"), `attachment; filename="ballast-bundle-`) {
		t.Fatalf("GET /logs/bundle = %d %v", rec.status, rec.header)
	}
	files := untar(t, rec.body.Bytes())
	for name, want := range map[string]string{
		"os.json":                           `"version":"1.2.3"`,
		"services.json":                     `"id":"apiserver"`,
		"userdata.json":                     `"state":"not-checked"`,
		"configuration-files.json":          `"/etc/motd"`,
		"settings.json":                     `"motd": "hello"`,
		"network.json.unavailable":          "not available: GET /network: the network service has not reported its state",
		"time.json":                         `"state":`,
		"updates.json.unavailable":          "not available: GET /updates/status: updates: not configured in this image",
		"report-hardening.json.unavailable": "not available: GET /report/hardening: this server computes no hardening report",
		"report-boot.json.unavailable":      "not available: GET /report/boot: this server computes no boot report",
		"mountinfo.txt":                     "erofs /dev/dm-0",
		"dmesg.txt.error":                   "no-kmsg",
		"logs/kernel.log.1":                 "k1\n",
		"logs/kernel.log":                   "k2\n",
		bundle.IndexName:                    `"name": "logs"`,
	} {
		if got, ok := files[name]; !ok || !strings.Contains(got, want) {
			t.Errorf("%s = %q (present: %v), want it to hold %q", name, got, ok, want)
		}
	}
	// The secret is redacted by the model's mark; what is set stays visible.
	var s map[string]any
	if err := json.Unmarshal([]byte(files["settings.json"]), &s); err != nil {
		t.Fatal(err)
	}
	admin := s["host-containers"].(map[string]any)["admin"].(map[string]any)
	if admin["user-data"] != settings.Redacted || admin["enabled"] != false {
		t.Errorf("settings.json host-containers.admin = %v", admin)
	}
	for name, content := range files {
		if strings.Contains(content, secret) {
			t.Errorf("%s holds the secret", name)
		}
	}
	var idx apitypes.BundleIndex
	json.Unmarshal([]byte(files[bundle.IndexName]), &idx)
	if len(idx.Parts) != len((&handler{}).bundleParts()) {
		t.Errorf("index lists %d parts: %+v", len(idx.Parts), idx)
	}
}

// A part that another request answers comes from the route table: once the endpoint is served
// it is in the bundle, and an endpoint that answers 503 is not available, with its reason.
func TestRequestParts(t *testing.T) {
	h := &handler{mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /network", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"address": "10.0.2.15"})
	})
	h.mux.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, apitypes.Error{Error: "no time service"})
	})
	h.mux.HandleFunc("GET /report/hardening", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, apitypes.Error{Error: "sysfs: permission denied"})
	})
	var out bytes.Buffer
	idx, err := bundle.Write(context.Background(), &out, []bundle.Part{
		h.requestPart("network.json", "/network"),
		h.requestPart("time.json", "/time"),
		h.requestPart("report-hardening.json", "/report/hardening"),
		h.requestPart("other.json", "/other"),
	}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, out.Bytes())
	for name, want := range map[string]string{
		"network.json":                "{\"address\":\"10.0.2.15\"}\n",
		"time.json.unavailable":       "not available: GET /time: no time service\n",
		"report-hardening.json.error": "error: GET /report/hardening: 500: sysfs: permission denied\n",
		"other.json.unavailable":      "not available: GET /other is not served by this build\n",
	} {
		if files[name] != want {
			t.Errorf("%s = %q, want %q", name, files[name], want)
		}
	}
	if idx.Parts[0].State != apitypes.BundlePartOK || idx.Parts[2].State != apitypes.BundlePartError {
		t.Errorf("index %+v", idx)
	}
}

// stubBoot is a boot reporter with a recovery key waiting.
type stubBoot struct{ key string }

func (b stubBoot) Boot() apitypes.BootReport {
	return apitypes.BootReport{SecureBoot: "enabled", RecoveryKey: b.key, RecoveryKeyPending: b.key != ""}
}
func (stubBoot) AcknowledgeRecoveryKey() error { return nil }

// The bundle's boot report says a recovery key waits, never what it is.
func TestBundleBootReport(t *testing.T) {
	const key = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv"
	h := &handler{cfg: Config{Boot: stubBoot{key: key}}}
	b, err := h.redactedBootReport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := `"recovery_key":"` + settings.Redacted + `","recovery_key_pending":true`
	if strings.Contains(string(b), key) || !strings.Contains(string(b), want) {
		t.Errorf("report-boot.json = %s, want %s and no key", b, want)
	}
	h.cfg.Boot = stubBoot{}
	if b, err := h.redactedBootReport(context.Background()); err != nil || strings.Contains(string(b), "recovery_key\"") {
		t.Errorf("without a key: %s, %v", b, err)
	}
}
