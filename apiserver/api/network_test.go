package api

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
)

func TestGetNetwork(t *testing.T) {
	store, _, err := datastore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	get := func(path string) (int, string) {
		h := NewHandler(Config{Store: store, NetworkState: path})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/network", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(""); code != 503 || !strings.Contains(body, "has not reported its state") {
		t.Errorf("GET /network without a state file configured = %d %s", code, body)
	}
	if code, body := get(state); code != 503 || !strings.Contains(body, state) {
		t.Errorf("GET /network before the service wrote its state = %d %s", code, body)
	}

	const written = `{"updated":"2025-01-02T03:04:05Z","interfaces":[{"name":"eth0","mac":"52:54:00:12:34:56","mtu":1500,"up":true,"carrier":true,"config":"default",
"addresses":[{"address":"10.0.2.15/24","source":"dhcp4","valid_until":"2025-01-03T03:04:05Z"}],
"dhcp4":{"state":"bound","addresses":["10.0.2.15/24"],"server":"10.0.2.2","routers":["10.0.2.2"],"dns":["10.0.2.3"],"acquired":"2025-01-02T03:04:05Z","expires":"2025-01-03T03:04:05Z","renewals":0}}],
"routes":[{"to":"default","via":"10.0.2.2","interface":"eth0","metric":1026,"protocol":"dhcp"}],
"dns":{"servers":["10.0.2.3"],"search":[],"source":"dhcp","sources":["dhcp4 eth0"]},"hostname":{"name":"ballast","source":"default"}}`
	os.WriteFile(state, []byte(written), 0o644)
	code, body := get(state)
	if code != 200 {
		t.Fatalf("GET /network = %d %s", code, body)
	}
	var st apitypes.Network
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Interfaces) != 1 || st.Interfaces[0].DHCP4 == nil || st.Interfaces[0].DHCP4.Addresses[0] != "10.0.2.15/24" ||
		st.Routes[0].Via != "10.0.2.2" || st.DNS.Sources[0] != "dhcp4 eth0" || st.Hostname.Source != "default" {
		t.Fatalf("GET /network = %+v", st)
	}

	// A file that is not the state (torn, or from something else) is the server's 500, not passed on.
	for _, bad := range []string{`{"interfaces":[`, `{"surprise":1}`} {
		os.WriteFile(state, []byte(bad), 0o644)
		if code, body := get(state); code != 500 || !strings.Contains(body, "network state "+state) {
			t.Errorf("GET /network of %s = %d %s", bad, code, body)
		}
	}
}
