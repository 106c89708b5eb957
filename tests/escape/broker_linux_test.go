package escape

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/tests/testutil"
)

// brokerName is an abstract socket name of the test's own, so tests running at once on a host
// do not meet each other's brokers.
func brokerName() string {
	return fmt.Sprintf("ballast-probe-broker-test-%d-%d", os.Getpid(), time.Now().UnixNano())
}

// fakeBroker answers every request with reply, passing fd when it is not negative.
func fakeBroker(t *testing.T, name, reply string, fd int) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + name, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf := make([]byte, 256)
			c.Read(buf)
			var oob []byte
			if fd >= 0 {
				oob = unix.UnixRights(fd)
			}
			c.WriteMsgUnix([]byte(reply), oob, nil)
			c.Close()
		}
	}()
}

// How each answer of the broker, or its absence, comes out of brokerOpen. The descriptor the
// kernel refuses under SELinux is a reply without one: the kernel truncates the message so.
func TestBrokerOpen(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name, reply string
		fd          int
		listen      bool
		want        error
	}{
		{"descriptor", "OK\n", int(f.Fd()), true, nil},
		{"broker cannot open", "ERR open /x: ENOENT\n", -1, true, errBrokerOpen},
		{"no descriptor", "OK\n", -1, true, errFDRefused},
		{"garbage", "what?\n", -1, true, errBrokerOpen},
		{"no broker", "", -1, false, errNoBroker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := brokerName()
			if tc.listen {
				fakeBroker(t, name, tc.reply, tc.fd)
			}
			p := &prober{opts: options{BrokerSocket: name, PeerWait: 600 * time.Millisecond}}
			start := time.Now()
			fd, err := p.brokerOpen("/x")
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("brokerOpen: %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if fd != -1 {
					t.Errorf("descriptor %d with an error", fd)
				}
				if tc.want == errNoBroker {
					if time.Since(start) < 500*time.Millisecond || !p.brokerMissed {
						t.Errorf("gave up after %v (missed %v), want the peer wait first", time.Since(start), p.brokerMissed)
					}
					start = time.Now()
					if _, err := p.brokerOpen("/y"); !errors.Is(err, errNoBroker) || time.Since(start) > 300*time.Millisecond {
						t.Errorf("second request: %v after %v, want at once", err, time.Since(start))
					}
				}
				return
			}
			defer unix.Close(fd)
			var a, b unix.Stat_t
			if err := unix.Fstat(fd, &a); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat(dir, &b); err != nil {
				t.Fatal(err)
			}
			if a.Ino != b.Ino || a.Dev != b.Dev {
				t.Error("the descriptor received is not the one sent")
			}
		})
	}
}

// TestProbeWithBroker runs a broker probe over a fake host root, a peer leaving its secret in
// its storage there, and a probe asking the broker for descriptors. Without SELinux nothing
// stands between a descriptor and its use (when root, the directories belong to nobody and only
// CAP_DAC_OVERRIDE lets the probe in): selinux-off, local-write and peer-storage must be
// ALLOWED, which proves they can go red where SELinux is what blocks them. The same probe in a
// network namespace of its own finds no broker: BLOCKED.
func TestProbeWithBroker(t *testing.T) {
	dir := probeDir(t)
	probe := filepath.Join(dir, "probe")
	root := t.TempDir()
	local := filepath.Join(root, strings.TrimPrefix(localDir, "/"))
	peerStorage := filepath.Join(root, strings.TrimPrefix(storageDir, "/"), "peer")
	selinuxfs := filepath.Join(root, "sys/fs/selinux")
	for _, d := range []string{peerStorage, selinuxfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"enforce": "1", "load": ""} {
		if err := os.WriteFile(filepath.Join(selinuxfs, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		for d, mode := range map[string]os.FileMode{local: 0o755, filepath.Dir(peerStorage): 0o755, peerStorage: 0o700} {
			if err := os.Chown(d, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	sock := brokerName()
	startPeer(t, probe, "--broker", root, "--broker-socket", sock)
	startPeer(t, probe, "--storage", peerStorage)
	secrets, _ := filepath.Glob(filepath.Join(peerStorage, secretPrefix+"*"))
	if len(secrets) != 1 {
		t.Fatalf("the peer's secrets in its storage: %v, want one", secrets)
	}

	// The probe's own selinuxfs is an empty directory: only the broker's is the fake one.
	emptyFS := t.TempDir()
	probeArgs := func(wait string) []string {
		return []string{"--broker-socket", sock, "--peer", "peer", "--peer-wait", wait, "--selinuxfs", emptyFS,
			"--skip", allBut(VectorSELinuxOff, VectorLocalWrite, VectorPeerStorage)}
	}
	res := runProbe(t, exec.Command(probe, probeArgs("5s")...))
	expect(t, res, map[string]bool{VectorSELinuxOff: true, VectorLocalWrite: true, VectorPeerStorage: true})
	if d := res[VectorSELinuxOff].Detail; !strings.Contains(d, "broker's") || !strings.Contains(d, "put back 1") {
		t.Errorf("selinux-off: %q, want it through the broker's descriptor, enforce put back", d)
	}
	if b, _ := os.ReadFile(filepath.Join(selinuxfs, "enforce")); string(b) != "1" {
		t.Errorf("enforce holds %q after the probe, want 1", b)
	}
	if left, _ := filepath.Glob(filepath.Join(local, ".ballast-probe-write-*")); len(left) > 0 {
		t.Errorf("the probe left %v", left)
	}

	unshare := testutil.Tool(t, "unshare", "util-linux")
	netns := []string{unshare, "--net", "--"}
	if os.Geteuid() != 0 {
		netns = []string{unshare, "--user", "--map-root-user", "--net", "--"}
	}
	try, err := exec.Command(netns[0], append(netns[1:], "true")...).CombinedOutput()
	testutil.Need(t, err == nil, "a network namespace: %v: %s", err, try)
	res = runProbe(t, exec.Command(netns[0], append(netns[1:], append([]string{probe}, probeArgs("1s")...)...)...))
	expect(t, res, map[string]bool{VectorSELinuxOff: false, VectorLocalWrite: false, VectorPeerStorage: false})
	for _, v := range []string{VectorLocalWrite, VectorPeerStorage} {
		if !strings.Contains(res[v].Detail, "no broker answered") {
			t.Errorf("%s: %q, want it blocked for want of a broker", v, res[v].Detail)
		}
	}
}

// selinuxOffAt on a fake selinuxfs: enforce that reads 0 is SELinux off already; files that
// refuse writing are blocked.
func TestSELinuxOffAt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		enforce string
		mode    os.FileMode
		allowed bool
		detail  string
	}{
		{"permissive", "0", 0o600, true, "reads 0"},
		{"writable", "1", 0o600, true, "wrote 0"},
		{"read-only", "1", 0o400, false, "open enforce for writing: EACCES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == 0o400 && os.Geteuid() == 0 {
				t.Skip("root opens a read-only file for writing")
			}
			dir := t.TempDir()
			for _, n := range []string{"enforce", "load"} {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(tc.enforce), tc.mode); err != nil {
					t.Fatal(err)
				}
			}
			fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			vd, ok := selinuxOffAt(fd, dir)
			if ok != tc.allowed || !strings.Contains(vd.detail, tc.detail) {
				t.Errorf("%s %s (ok %v), want allowed %v and %q", vd.status, vd.detail, ok, tc.allowed, tc.detail)
			}
		})
	}
}
