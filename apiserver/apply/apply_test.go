package apply

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/settings"
)

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	tests := []struct {
		name      string
		s         settings.Settings
		files     map[string]string // expected content; "" means the file must not exist
		hostnames []string
	}{
		{"nothing set", settings.Settings{}, map[string]string{"motd": "", "hostname": ""}, nil},
		{"motd gets a newline", settings.Settings{Motd: ptr("hello")}, map[string]string{"motd": "hello\n", "hostname": ""}, nil},
		{"multi-line motd kept", settings.Settings{Motd: ptr("a\nb\n")}, map[string]string{"motd": "a\nb\n"}, nil},
		{"hostname", settings.Settings{Network: &settings.Network{Hostname: ptr("node-1")}},
			map[string]string{"hostname": "node-1\n", "motd": ""}, []string{"node-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			etc := t.TempDir()
			var set []string
			a := Applier{EtcDir: etc, SetHostname: func(h string) error { set = append(set, h); return nil }}
			if err := a.Apply(tt.s); err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.files {
				b, err := os.ReadFile(filepath.Join(etc, name))
				if want == "" {
					if !os.IsNotExist(err) {
						t.Errorf("%s exists (%q), want none", name, b)
					}
					continue
				}
				if err != nil || string(b) != want {
					t.Errorf("%s = %q, %v; want %q", name, b, err, want)
				}
			}
			if strings.Join(set, ",") != strings.Join(tt.hostnames, ",") {
				t.Errorf("sethostname calls = %q, want %q", set, tt.hostnames)
			}
			entries, _ := os.ReadDir(etc)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Errorf("temp file %s left in etc", e.Name())
				}
			}
		})
	}
}

func TestApplyCarriesOnPastErrors(t *testing.T) {
	etc := t.TempDir()
	a := Applier{EtcDir: etc, SetHostname: func(string) error { return errors.New("EPERM") }}
	err := a.Apply(settings.Settings{Motd: ptr("m"), Network: &settings.Network{Hostname: ptr("h")}})
	if err == nil || !strings.Contains(err.Error(), `sethostname "h": EPERM`) {
		t.Fatalf("Apply error = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "motd")); string(b) != "m\n" {
		t.Fatalf("motd not written after the hostname failed: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "hostname")); string(b) != "h\n" {
		t.Fatalf("/etc/hostname not written after sethostname failed: %q", b)
	}
	bad := Applier{EtcDir: filepath.Join(etc, "missing")}
	if err := bad.Apply(settings.Settings{Motd: ptr("m")}); err == nil || !strings.Contains(err.Error(), "missing/motd") {
		t.Fatalf("Apply into a missing dir: %v", err)
	}
}
