package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
)

var bootMarkerRE = regexp.MustCompile(`(?m)^\S+ \[\s*0\.000000\] -- boot ([0-9a-f-]{36}) version (\S+) --$`)

// logOf reads a source's whole log through the API.
func logOf(t *testing.T, c *client.Client, source string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rc, err := c.Logs(ctx, source, false)
	if err != nil {
		t.Fatalf("GET /logs?service=%s: %v", source, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GET /logs?service=%s: %v", source, err)
	}
	return string(b)
}

// bootIDs returns the boot ids of a log's boot markers, in order, checking each marker's version.
func bootIDs(t *testing.T, log, source, version string) []string {
	t.Helper()
	var ids []string
	for _, m := range bootMarkerRE.FindAllStringSubmatch(log, -1) {
		if m[2] != version {
			t.Errorf("%s: boot marker %q, want version %s", source, m[0], version)
		}
		ids = append(ids, m[1])
	}
	return ids
}

// TestLogsSurviveRebootAndBundle boots one disk twice. The kernel's and the apiserver's logs of
// the first boot come back through the remote API on the second, unchanged and followed by the
// second boot's marker; a followed log delivers a new kernel message; the support bundle holds
// every part, with the server's private key redacted.
func TestLogsSurviveRebootAndBundle(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	m := loadManifest(t)
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	disk := copyDisk(t, 0)
	cidata := makeCidata(t, "[settings]\nmotd = \"logs test\"\n")

	vm, endpoint := bootRemote(t, disk, cidata)
	// The apiserver's milestone is on the console (relayed by the system init), and in its log.
	if !regexp.MustCompile(`(?m)^\[\s*[0-9.]+\] ballast: userdata: applied 1 settings from `).MatchString(vm.Console()) {
		t.Errorf("the console lacks the apiserver's `ballast: userdata: applied ...` line")
	}
	c := remoteClient(t, endpoint, cfg)
	kernel1, api1 := logOf(t, c, contract.KernelLogSource), logOf(t, c, "apiserver")
	ids := bootIDs(t, kernel1, "kernel", m.Version)
	if len(ids) != 1 {
		t.Fatalf("kernel log of the first boot has %d boot markers, want 1:\n%.2000s", len(ids), kernel1)
	}
	// The kernel's own first lines, logged long before PID 1 read them, with their timestamps.
	if !regexp.MustCompile(`(?m)^\S+Z \[\s*0\.0+\] <5> Linux version `).MatchString(kernel1) {
		t.Errorf("the kernel log lacks the kernel's first line at uptime 0:\n%.2000s", kernel1)
	}
	if !strings.Contains(api1, "ballast: userdata: applied 1 settings from ") {
		t.Errorf("the apiserver's log lacks its userdata line:\n%s", api1)
	}
	sources := listLogs(t, c)
	for _, want := range []string{"apiserver", "init", "kernel", "network"} {
		if !strings.Contains(" "+strings.Join(sources, " ")+" ", " "+want+" ") {
			t.Errorf("GET /logs lists %q, without %s", sources, want)
		}
	}
	// ?follow=true delivers what the kernel logs next.
	expect(t, vm, `service console-shell ready`) // not the prompt: a milestone may share its line
	followKernel(t, c, vm)

	powerdown(t, vm)
	vm, endpoint = bootRemote(t, disk, cidata)
	c = remoteClient(t, endpoint, cfg)
	kernel2, api2, init2 := logOf(t, c, contract.KernelLogSource), logOf(t, c, "apiserver"), logOf(t, c, contract.InitLogSource)
	for _, l := range []struct{ source, first, now string }{{"kernel", kernel1, kernel2}, {"apiserver", api1, api2}} {
		if !strings.HasPrefix(l.now, l.first) {
			t.Errorf("%s: the first boot's lines read on the first boot are not the start of its log on the second", l.source)
		}
		ids2 := bootIDs(t, l.now, l.source, m.Version)
		if len(ids2) != 2 || ids2[0] != ids[0] || ids2[1] == ids[0] {
			t.Errorf("%s: boot markers %q after a reboot, want %s then a new one", l.source, ids2, ids[0])
		}
		if n := strings.Count(l.now, "ballast-follow-test"); l.source == "kernel" && n != 1 {
			t.Errorf("kernel: the message written on the first boot is there %d times", n)
		}
	}
	if n := len(regexp.MustCompile(`(?m)<5> Linux version `).FindAllString(kernel2, -1)); n != 2 {
		t.Errorf("the kernel log holds %d boots' first lines, want 2", n)
	}
	// The first boot's shutdown was logged before the data partition was unmounted.
	if !strings.Contains(init2, "ballast: shutdown power off") {
		t.Errorf("the init log lacks the first boot's shutdown:\n%s", init2)
	}
	tail := logTail(t, c, contract.KernelLogSource, 3)
	lines := strings.Split(strings.TrimSuffix(tail, "\n"), "\n")
	for _, l := range lines {
		if _, err := contract.ParseLogRecord(l); err != nil {
			t.Errorf("the last lines of the kernel log: %v", err)
		}
	}
	if len(lines) != 3 {
		t.Errorf("the last 3 lines of the kernel log: %q", tail)
	}

	checkBundle(t, c)
}

func listLogs(t *testing.T, c *client.Client) []string {
	t.Helper()
	b, err := c.Do(t.Context(), "GET", "/logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	var l apitypes.Logs
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l.Services
}

func logTail(t *testing.T, c *client.Client, source string, n int) string {
	t.Helper()
	rc, err := c.LogTail(t.Context(), source, n, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// followKernel follows the kernel log from its end and writes a message into the kernel's log on
// the guest's console; the stream must deliver it.
func followKernel(t *testing.T, c *client.Client, vm interface{ Send(string) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	rc, err := c.LogTail(ctx, contract.KernelLogSource, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(rc)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ballast-follow-test") {
				found <- sc.Text()
				return
			}
		}
		close(found)
	}()
	vm.Send("echo ballast-follow-test > /dev/kmsg\r")
	select {
	case l, ok := <-found:
		// Written by a user process: facility user (1), level notice (5) or whatever the default is.
		if !ok || !regexp.MustCompile(`^\S+Z \[\s*[0-9]+\.[0-9]{6}\] <\d+> ballast-follow-test$`).MatchString(l) {
			t.Errorf("followed kernel line %q (stream ended: %v)", l, !ok)
		}
	case <-ctx.Done():
		t.Errorf("the followed kernel log did not deliver a message written to /dev/kmsg")
	}
}

// checkBundle fetches the support bundle over the remote API and checks each part.
func checkBundle(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rc, err := c.Bundle(ctx)
	if err != nil {
		t.Fatalf("GET /logs/bundle: %v", err)
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	tr := tar.NewReader(gz)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("bundle: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("bundle: %s: %v", h.Name, err)
		}
		files[h.Name] = string(b)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	t.Logf("bundle: %q", names)

	var idx apitypes.BundleIndex
	if err := json.Unmarshal([]byte(files["bundle.json"]), &idx); err != nil {
		t.Fatalf("bundle.json: %v", err)
	}
	for _, want := range []struct{ name, holds string }{
		{"os.json", `"roothash"`},
		{"services.json", `"id":"apiserver"`},
		{"mountinfo.txt", " /local "},
		{"dmesg.txt", "] <5> Linux version "},
		{"logs/kernel.log", "-- boot "},
		{"logs/apiserver.log", "ballast: userdata: "},
		{"logs/init.log", "ballast: ready "},
	} {
		if !strings.Contains(files[want.name], want.holds) {
			t.Errorf("bundle %s does not hold %q:\n%.1000s", want.name, want.holds, files[want.name])
		}
	}
	// network, time and the hardening and boot reports: real, or a note saying why not.
	for _, p := range []string{"network.json", "time.json", "report-hardening.json", "report-boot.json"} {
		_, real := files[p]
		note, noted := files[p+".unavailable"]
		if !real && !(noted && strings.HasPrefix(note, "not available: ")) {
			t.Errorf("bundle has neither %s nor a note that it is not available", p)
		}
	}
	// The settings are there with the server's private key redacted, by the model's mark.
	var s settings.Settings
	if err := json.Unmarshal([]byte(files["settings.json"]), &s); err != nil {
		t.Fatalf("settings.json: %v", err)
	}
	if s.Motd == nil || *s.Motd != "logs test" || s.API == nil || s.API.Remote == nil || s.API.Remote.ServerKey == nil ||
		string(*s.API.Remote.ServerKey) != settings.Redacted || s.API.Remote.ServerCert == nil {
		t.Errorf("settings.json: %.2000s", files["settings.json"])
	}
	// The key is PEM in the image's defaults; nothing in the bundle may hold one.
	for name, content := range files {
		if strings.Contains(content, "PRIVATE KEY-----") {
			t.Errorf("bundle %s holds a private key", name)
		}
	}
	for _, p := range idx.Parts {
		if p.State == apitypes.BundlePartError {
			t.Errorf("bundle part %s failed: %s", p.Name, p.Detail)
		}
	}
}
