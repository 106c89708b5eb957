package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// FuzzPatch sends arbitrary PATCH /settings bodies (seeds in testdata/fuzz/FuzzPatch) to the
// handler over a real datastore. Every answer must be 204 or a JSON error the client is to blame
// for, and a staged patch must read back as valid settings.
func FuzzPatch(f *testing.F) {
	f.Add([]byte(`{"motd":"hi"}`))
	store, _, err := datastore.New(filepath.Join(f.TempDir(), "ds"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	h := NewHandler(Config{Store: store})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("PATCH", "/settings?tx=fuzz", strings.NewReader(string(body))))
		switch rec.Code {
		case http.StatusNoContent:
			get := httptest.NewRecorder()
			h.ServeHTTP(get, httptest.NewRequest("GET", "/tx?tx=fuzz", nil))
			if _, err := settings.DecodeJSON(get.Body); err != nil {
				t.Fatalf("staged patch does not read back: %v", err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e apitypes.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error answer %q is not a JSON error", rec.Body)
			}
		default:
			t.Fatalf("PATCH %q: status %d %s", body, rec.Code, rec.Body)
		}
		// Start every input from an empty transaction, so that inputs do not depend on each other.
		del := httptest.NewRecorder()
		h.ServeHTTP(del, httptest.NewRequest("DELETE", "/tx?tx=fuzz", nil))
		if del.Code != http.StatusNoContent {
			t.Fatalf("DELETE /tx: %d %s", del.Code, del.Body)
		}
	})
}
