package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/daemon"
	"github.com/ballast-os/ballast/apiserver/osinfo"
	"github.com/ballast-os/ballast/apiserver/report"
	"github.com/ballast-os/ballast/apiserver/timeinfo"
	"github.com/ballast-os/ballast/contract"
)

// TestCommands drives the command against a real server in temp directories.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	rel := filepath.Join(dir, "os-release")
	os.WriteFile(rel, []byte("VERSION_ID=9\nVARIANT_ID=dev\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte("ballast.slot=a\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	timeState := filepath.Join(dir, "time.json")
	os.WriteFile(timeState, []byte(`{"state":"synced","servers":["ntp.test","10.0.0.1"],"last_sync":{"server":"ntp.test",
		"address":"10.0.3.1:123","stratum":2,"reference_id":"GPS","offset_seconds":-0.0015,"delay_seconds":0.002,"jitter_seconds":0.0001,
		"root_distance_seconds":0.011,"time":"2026-05-01T07:59:50Z"},"last_step":{"time":"2026-05-01T07:59:40Z","seconds":5.000001},
		"poll_seconds":64,"next_poll":"2026-05-01T08:00:54Z","updated":"2026-05-01T07:59:50Z"}`), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	listening, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			Socket: sock, Datastore: filepath.Join(dir, "ds"), EtcDir: filepath.Join(dir, "etc"),
			OS: osinfo.Sources{OSRelease: rel, Cmdline: filepath.Join(dir, "cmdline")},
			Time: timeinfo.Sources{State: timeState, Now: func() time.Time { return time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC) },
				Kernel: func() (apitypes.KernelClock, error) {
					return apitypes.KernelClock{Synchronised: true, MaxErrorSeconds: 0.0125, FrequencyPPM: -3.5}, nil
				}},
			OnListen: func() { close(listening) },
			AllowUID: func(uid uint32) bool { return uid == uint32(os.Getuid()) },
			// A root with nothing of a Ballast host in it: most checks fail.
			Report:       &report.Sources{Root: filepath.Join(dir, "etc")},
			NetworkState: filepath.Join(dir, "network-state.json"),
		})
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	defer func() { cancel(); <-done }()

	tests := []struct {
		args      []string
		wantOut   string // substring
		wantErr   string // substring; "" for success
		wantUsage bool
		stdin     string
	}{
		{args: []string{"get", "os"}, wantOut: `"variant": "dev"`},
		{args: []string{"network"}, wantErr: "the network service has not reported its state"},
		{args: []string{"set", "motd=hello", "network.hostname=box"}},
		{args: []string{"get", "settings.motd"}, wantOut: "{\n  \"settings\": {\n    \"motd\": \"hello\"\n  }\n}\n"},
		{args: []string{"set", "--json", `{"motd":"json"}`}},
		{args: []string{"get", "settings"}, wantOut: `"motd": "json"`},
		{args: []string{"get"}, wantOut: `"os": {`},
		{args: []string{"get", "nothing.here"}, wantOut: "{}\n"},
		{args: []string{"set", "network.hostnme=x"}, wantErr: "settings.network.hostnme: unknown key"},
		{args: []string{"set", "network.hostname=-x"}, wantErr: "settings.network.hostname: "},
		{args: []string{"raw", "-m", "GET", "-u", "/settings"}, wantOut: `"hostname":"box"`},
		{args: []string{"raw", "-m", "PATCH", "-u", "/settings", "-d", `{"motd":1}`}, wantErr: "settings.motd: expected string, got integer"},
		{args: []string{"raw", "-u", "/nope"}, wantErr: "GET /nope: Not Found"},
		{args: []string{}, wantUsage: true},
		{args: []string{"frob"}, wantUsage: true},
		{args: []string{"set"}, wantUsage: true},
		{args: []string{"raw", "-m", "GET"}, wantUsage: true},
		{args: []string{"get", "a", "b"}, wantUsage: true},
		{args: []string{"set", "kernel.sysctl.vm.swappiness=10", "host-containers.admin.enabled=false"}},
		{args: []string{"get", "settings.kernel.sysctl.vm.swappiness"}, wantOut: `"vm.swappiness": "10"`},
		{args: []string{"get", `settings.kernel.sysctl."vm.swappiness"`}, wantOut: `"vm.swappiness": "10"`},
		{args: []string{"get", "settings.host-containers"}, wantOut: `"enabled": false`},
		{args: []string{"apply", "-f", "-"}, stdin: "[settings]\nmotd = \"applied\"\n[settings.dns]\nname-servers = [\"10.0.0.2\"]\n", wantOut: `"changed": [`},
		{args: []string{"get", "settings.dns"}, wantOut: `"10.0.0.2"`},
		{args: []string{"apply", "-f", "-"}, stdin: `{"settings":{"motd":"json applied"}}`, wantOut: `"settings.motd"`},
		{args: []string{"apply", "-f", "-"}, stdin: "[settings]\n\nmotd = 7\n", wantErr: "standard input: line 3: key settings.motd: expected string, got integer"},
		{args: []string{"apply", "-f", "/nonexistent"}, wantErr: "no such file"},
		{args: []string{"apply"}, wantUsage: true},
		{args: []string{"time"}, wantOut: "state:      synced\nservers:    ntp.test, 10.0.0.1\n" +
			"server:     ntp.test (10.0.3.1:123), stratum 2, reference GPS\n" +
			"offset:     -0.001500 s (delay 0.002000 s, jitter 0.000100 s, root distance 0.011000 s)\n" +
			"last sync:  2026-05-01T07:59:50Z\nlast step:  +5.000001 s at 2026-05-01T07:59:40Z\n" +
			"poll:       every 64 s, next at 2026-05-01T08:00:54Z\nclock:      2026-05-01T08:00:00Z\n" +
			"kernel:     synchronised (max error 0.012500 s, estimated error 0.000000 s, frequency -3.500 ppm)\n"},
		{args: []string{"time", "--json"}, wantOut: `"clock": "2026-05-01T08:00:00Z"`},
		{args: []string{"time", "now"}, wantUsage: true},
		{args: []string{"logs"}, wantErr: "system init is not reachable"},
		{args: []string{"logs", "-f"}, wantUsage: true},
		{args: []string{"logs", "-n", "3"}, wantUsage: true},
		{args: []string{"logs", "-n", "-1", "kernel"}, wantUsage: true},
		{args: []string{"logs", "--bundle", "kernel"}, wantUsage: true},
		{args: []string{"logs", "--bundle", "-f"}, wantUsage: true},
		{args: []string{"logs", "-n", "5", "kernel"}, wantErr: "system init is not reachable"},
		// Without a system init the bundle still comes, its logs part marked unavailable.
		{args: []string{"logs", "--bundle"}, wantOut: "\x1f\x8b"},
		{args: []string{"update", "status"}, wantErr: "updates: not configured in this image"},
		{args: []string{"update", "apply"}, wantErr: "updates: not configured in this image"},
		{args: []string{"update"}, wantUsage: true},
		{args: []string{"update", "upgrade"}, wantUsage: true},
		{args: []string{"update", "check", "now"}, wantUsage: true},
		{args: []string{"update", "status", "--yaml"}, wantUsage: true},
		{args: []string{"reboot"}, wantErr: "system init is not reachable"},
		{args: []string{"reboot", "now"}, wantUsage: true},
		{args: []string{"report"}, wantErr: "checks failed", wantOut: "FAIL  selinux"},
		{args: []string{"report", "--json", "hardening"}, wantErr: "checks failed", wantOut: `"id": "verity-root"`},
		{args: []string{"report", "security"}, wantUsage: true},
		{args: []string{"report", "boot"}, wantOut: `"record_error": "no boot security record`},
		{args: []string{"report", "boot", "--acknowledge-recovery-key"}, wantErr: "no recovery key is waiting to be acknowledged"},
		{args: []string{"report", "hardening", "--acknowledge-recovery-key"}, wantUsage: true},
		{args: []string{"report", "boot", "extra"}, wantUsage: true},
		{args: []string{"--endpoint", "https://127.0.0.1:1", "get"}, wantUsage: true},
		{args: []string{"--pki", "/tmp", "get"}, wantUsage: true},
		{args: []string{"--endpoint", "http://127.0.0.1:1", "--pki", "/nonexistent", "get"}, wantErr: "pki"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"--socket", sock}, tt.args...), strings.NewReader(tt.stdin), &out)
			switch {
			case tt.wantUsage:
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if !strings.Contains(out.String(), tt.wantOut) {
					t.Fatalf("output %q, want it to contain %q", out.String(), tt.wantOut)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !strings.Contains(out.String(), tt.wantOut) {
					t.Fatalf("output %q, want it to contain %q", out.String(), tt.wantOut)
				}
			}
		})
	}
	// A recovery key: shown by report boot until acknowledged, never after.
	const key = "cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv-cbdefghi-jklnrtuv"
	keyFile := filepath.Join(dir, "etc", contract.RecoveryKeyPath)
	os.MkdirAll(filepath.Dir(keyFile), 0o700)
	os.WriteFile(keyFile, []byte(key+"\n"), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "boot"}, `"recovery_key": "` + key + `",` + "\n" + `  "recovery_key_pending": true`},
		{[]string{"report", "--acknowledge-recovery-key", "boot"}, "recovery key acknowledged"},
		{[]string{"report", "boot"}, `"recovery_key_pending": false`},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"--socket", sock}, tt.args...), nil, &out); err != nil || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s: %v, output %q, want it to contain %q", tt.args, err, out.String(), tt.want)
		}
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("recovery key file after the acknowledgement: %v", err)
	}

	// The network service's state, once written.
	os.WriteFile(filepath.Join(dir, "network-state.json"), []byte(`{"updated":"2025-01-01T00:00:00Z","interfaces":[],"routes":[],
		"dns":{"servers":["10.0.2.3"],"search":[],"source":"dhcp","sources":["dhcp4 eth0"]},"hostname":{"name":"box","source":"settings"}}`), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"network"}, "dns: 10.0.2.3 search - (dhcp: dhcp4 eth0)\nhostname: box (settings)\n"},
		{[]string{"network", "--json"}, `"source": "settings"`},
		{[]string{"get", "network.hostname"}, "{\n  \"network\": {\n    \"hostname\": {\n      \"name\": \"box\",\n      \"source\": \"settings\"\n    }\n  }\n}\n"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"--socket", sock}, tt.args...), nil, &out); err != nil || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%s: %v, output %q, want it to contain %q", tt.args, err, out.String(), tt.want)
		}
	}
	if err := run(context.Background(), []string{"--socket", sock, "network", "eth0"}, nil, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Errorf("network eth0: %v, want a usage error", err)
	}

	// No server: a clear error naming the socket.
	err := run(context.Background(), []string{"--socket", filepath.Join(dir, "none"), "get"}, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "none")) {
		t.Fatalf("without a server: %v", err)
	}
}

// set prints the notes of the apply: what the running kernel leaves to the next boot.
func TestSetPrintsNotes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/settings":
			w.WriteHeader(http.StatusNoContent)
		case "/tx/commit_and_apply":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, `{"changed":["settings.kernel.lockdown"],"notes":["lockdown: none takes effect at the next boot"]}`)
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--socket", sock, "set", "kernel.lockdown=none"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "note: lockdown: none takes effect at the next boot\n" {
		t.Errorf("set printed %q", got)
	}
}
