package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/ociimage"
	"github.com/ballast-os/ballast/tests/qemu"
)

// goProgram builds a static Go program of this repository (a main package path like
// ./tests/image/hello) for a container image.
func goProgram(t testing.TB, pkg string) string {
	t.Helper()
	return goProgramFor(t, pkg, runtime.GOARCH)
}

// goProgramFor is goProgram for another architecture's images (GOARCH).
func goProgramFor(t testing.TB, pkg, goarch string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// imageArchive writes img as an OCI image layout tarball, or a `docker save` tarball.
func imageArchive(t testing.TB, img ociimage.Image, docker bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := ociimage.WriteOCI
	if docker {
		write = ociimage.WriteDocker
	}
	if err := write(f, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// helloImage is the hello program as an image; args follow its entrypoint.
func helloImage(t testing.TB, hello string, args ...string) ociimage.Image {
	t.Helper()
	f, err := ociimage.Program(hello, "/hello")
	if err != nil {
		t.Fatal(err)
	}
	return ociimage.Image{Ref: "ballast.test/hello:1", Files: []ociimage.File{f}, Entrypoint: append([]string{"/hello"}, args...)}
}

// makeSeed makes a NoCloud volume with user data and files (name in the volume: path here).
func makeSeed(t testing.TB, userData string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "cidata.img")
	ud := filepath.Join(dir, "user-data")
	if err := os.WriteFile(ud, []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	size := int64(1 << 20)
	for _, p := range files {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size() + 64<<10
	}
	kib := strconv.FormatInt(size/1024*5/4+1024, 10)
	if out, err := exec.Command(tool(t, "mkfs.fat", "dosfstools"), "-C", "-n", "CIDATA", img, kib).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.fat: %v %s", err, out)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	if out, err := exec.Command(tool(t, "mcopy", "mtools"), "-i", img, ud, "::user-data").CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v %s", err, out)
	}
	for _, n := range names {
		if out, err := exec.Command(tool(t, "mcopy", "mtools"), "-i", img, files[n], "::"+n).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v %s", n, err, out)
		}
	}
	return img
}

// bootVM boots disk with extra disks and the remote API forwarded, and returns the VM and the
// API's endpoint without waiting for anything.
func bootVM(t *testing.T, disk string, extra []string, guestFwd ...string) (*qemu.VM, string) {
	t.Helper()
	port := freePort(t)
	log := filepath.Join(t.TempDir(), "console.log")
	vm, err := startVM(t, qemu.Config{Disk: disk, ExtraDisks: extra, LogFile: log,
		HostFwd: []string{fmt.Sprintf("tcp:127.0.0.1:%d-:50443", port)}, GuestFwd: guestFwd, Timeout: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console log: %s", vm.Console())
		}
	})
	return vm, fmt.Sprintf("https://127.0.0.1:%d", port)
}

func devClient(t *testing.T, endpoint string) *client.Client {
	t.Helper()
	cfg, err := client.LoadPKI(filepath.Join(buildDir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	return remoteClient(t, endpoint, cfg)
}

// waitContainer polls GET /services until the named entry satisfies ok, and returns it.
func waitContainer(t *testing.T, c *client.Client, name, what string, timeout time.Duration, ok func(contract.ServiceStatus) bool) contract.ServiceStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		svcs, err := c.Services(ctx)
		cancel()
		last = fmt.Sprintf("%+v %v", svcs, err)
		if err == nil {
			i := slices.IndexFunc(svcs, func(s contract.ServiceStatus) bool { return s.ID == name })
			st := contract.ServiceStatus{ID: name, State: "absent"}
			if i >= 0 {
				st = svcs[i]
			}
			if ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: not %s within %v: %s", name, what, timeout, last)
		}
		time.Sleep(time.Second)
	}
}

func running(s contract.ServiceStatus) bool { return s.State == "running" && s.Pid > 0 }

// waitLog polls a log until re matches it, and returns the match.
func waitLog(t *testing.T, c *client.Client, name, re string, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	var text string
	for time.Now().Before(deadline) {
		rc, err := c.Logs(t.Context(), name, false)
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			text = string(b)
			if m := rx.FindStringSubmatch(text); m != nil {
				return m
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("log %s: no %q within %v:\n%s", name, re, timeout, text)
	return nil
}

// execIn runs a command in a host container through the API (the exec stream protocol) and
// returns its stdout, stderr and exit status.
func execIn(t *testing.T, c *client.Client, name string, cmd ...string) (string, string, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	conn, err := c.Exec(ctx, contract.ExecRequest{Service: name, Command: cmd})
	if err != nil {
		return "", "", 0, err
	}
	defer conn.Close()
	if err := contract.WriteFrame(conn, contract.ExecFrameEOF, nil); err != nil {
		return "", "", 0, err
	}
	var stdout, stderr strings.Builder
	for {
		typ, p, err := contract.ReadFrame(conn)
		if err != nil {
			return stdout.String(), stderr.String(), 0, fmt.Errorf("exec %s: %w", name, err)
		}
		switch typ {
		case contract.ExecFrameStdout:
			stdout.Write(p)
		case contract.ExecFrameStderr:
			stderr.Write(p)
		case contract.ExecFrameError:
			return stdout.String(), stderr.String(), 0, errors.New(string(p))
		case contract.ExecFrameExit:
			code, err := strconv.Atoi(string(p))
			return stdout.String(), stderr.String(), code, err
		}
	}
}

const hostContainersUserData = `[settings.host-containers.web]
source = "oci-archive:/run/cidata/web.tar"
enabled = true
user-data = "d2ViIHNldHRpbmdz"

[settings.host-containers.crasher]
source = "oci-archive:/run/cidata/crasher.tar"
enabled = true

[settings.host-containers.control]
source = "oci-archive:/run/cidata/web.tar"
enabled = true
api-access = true

[settings.host-containers.isolated]
source = "oci-archive:/run/cidata/web.tar"
enabled = true
user-namespace = true
`

// TestHostContainers boots with three host containers whose images are archives on the NoCloud
// volume (an OCI layout and a `docker save` tarball): each runs with its user data and its log,
// one that exits is restarted with back-off, only the one that asks reaches the API socket,
// exec runs commands in them over the remote API and the console, and enabling and disabling
// through the API takes effect at once. A second boot without the volume runs them from the
// images kept in containerd's store.
func TestHostContainers(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	hello := goProgram(t, "./tests/image/hello")
	web := imageArchive(t, helloImage(t, hello), false)
	crasher := imageArchive(t, helloImage(t, hello, "exit", "3"), true)
	seed := makeSeed(t, hostContainersUserData, map[string]string{"web.tar": web, "crasher.tar": crasher})
	disk := copyDisk(t, 2<<30)
	vm, endpoint := bootVM(t, disk, []string{seed})
	expect(t, vm, readyRE.String())
	c := devClient(t, endpoint)

	st := waitContainer(t, c, "web", "running", 3*time.Minute, running)
	if st.Kind != contract.KindHostContainer {
		t.Errorf("web: kind %q, want %q", st.Kind, contract.KindHostContainer)
	}
	m := waitLog(t, c, "web", `hello: host=(\S+) uid=(\d+) user-data=(.*) api=(\S+)`, time.Minute)
	if m[1] != "web" || m[2] != "0" || m[3] != `"web settings"` || m[4] != "unreachable" {
		t.Errorf("web's first line: host %s uid %s user-data %s api %s; want web, 0, \"web settings\", unreachable", m[1], m[2], m[3], m[4])
	}
	waitLog(t, c, "web", `hello: a line on stderr`, 10*time.Second)
	// api-access binds the socket in: the control container's GET /os is answered.
	if m := waitLog(t, c, "control", `api=(\S+)`, 2*time.Minute); m[1] != "status-200" {
		t.Errorf("control container's API: %s, want status-200", m[1])
	}
	// A user namespace: root in the container, an unprivileged id on the host.
	iso := waitContainer(t, c, "isolated", "running", 3*time.Minute, running)
	if m := waitLog(t, c, "isolated", `hello: host=isolated uid=(\d+)`, time.Minute); m[1] != "0" {
		t.Errorf("isolated: uid %s inside, want 0", m[1])
	}
	hostUID := shell(t, vm, 2, fmt.Sprintf("awk '/^Uid:/ {print $2}' /proc/%d/status", iso.Pid))
	if n, err := strconv.Atoi(hostUID); err != nil || n < 1<<20 {
		t.Errorf("isolated's root is uid %q on the host, want a mapped id from %d", hostUID, 1<<20)
	}
	// Each container has a category pair of its own.
	ctl := waitContainer(t, c, "control", "running", time.Minute, running)
	for _, x := range []contract.ServiceStatus{st, iso} {
		if !regexp.MustCompile(`^system_u:system_r:container_t:s0:c\d+,c\d+$`).MatchString(x.Label) {
			t.Errorf("%s: SELinux label %q", x.ID, x.Label)
		}
	}
	if !regexp.MustCompile(`^system_u:system_r:control_t:s0:c\d+,c\d+$`).MatchString(ctl.Label) {
		t.Errorf("control (api-access): SELinux label %q", ctl.Label)
	}
	if st.Label == iso.Label || st.Label == ctl.Label || iso.Label == ctl.Label {
		t.Errorf("containers share a category pair: %s %s %s", st.Label, iso.Label, ctl.Label)
	}
	if webUID := shell(t, vm, 3, fmt.Sprintf("awk '/^Uid:/ {print $2}' /proc/%d/status", st.Pid)); webUID != "0" {
		t.Errorf("web (no user namespace) runs as uid %q on the host", webUID)
	}
	// The crasher exits 3 every time: it is restarted, with growing pauses, and says why.
	cr := waitContainer(t, c, "crasher", "restarted twice", 3*time.Minute, func(s contract.ServiceStatus) bool { return s.Restarts >= 2 })
	if cr.LastExit != "exit status 3" {
		t.Errorf("crasher: last exit %q, want exit status 3", cr.LastExit)
	}
	if n := strings.Count(logOf(t, c, "crasher"), "hello: host=crasher"); n < 2 {
		t.Errorf("crasher's log has %d starts, want 2 or more", n)
	}

	// exec over the remote API: output, stderr and the exit status come back.
	out, errOut, code, err := execIn(t, c, "web", "/hello", "exit", "7")
	if err != nil || code != 7 || !strings.Contains(out, "hello: host=web") || !strings.Contains(errOut, "a line on stderr") {
		t.Errorf("exec in web: %q %q status %d, %v", out, errOut, code, err)
	}
	if _, _, _, err := execIn(t, c, "web", "/no/such/program"); err == nil {
		t.Errorf("exec of a missing program succeeded")
	}
	if _, _, _, err := execIn(t, c, "nosuch", "/hello"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("exec in a container that does not exist: %v", err)
	}
	// And from the console, with apiclient exec: its exit status is the command's.
	if got := shell(t, vm, 4, "apiclient exec web -- /hello exit 5 </dev/null >/dev/null; echo rc=$?"); !strings.Contains(got, "rc=5") {
		t.Errorf("apiclient exec: %q", got)
	}
	// With the console as stdin, exec runs the command on a terminal (the shim's pty).
	if got := shell(t, vm, 5, "apiclient exec web -- /hello exit 6; echo rc=$?"); !strings.Contains(got, "hello: host=web") || !strings.Contains(got, "rc=6") {
		t.Errorf("apiclient exec on a terminal: %q", got)
	}
	// The default container reaches neither the API socket nor containerd's from the host's paths.
	if out, _, _, _ := execIn(t, c, "web", "/hello", "exit", "0"); !strings.Contains(out, "api=unreachable") {
		t.Errorf("web reaches the API: %q", out)
	}

	// Disable one, enable a new one, through the API: no reboot.
	webPid := st.Pid
	res, err := c.Apply(t.Context(), mustSettings(t, `{"host-containers":{"crasher":{"enabled":false},
		"late":{"source":"oci-archive:/run/cidata/web.tar","enabled":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(res.Restarted, "host-containers") {
		t.Errorf("the manager was restarted for a container change: %v", res.Restarted)
	}
	waitContainer(t, c, "crasher", "gone", time.Minute, func(s contract.ServiceStatus) bool { return s.State == "absent" })
	waitContainer(t, c, "late", "running", 2*time.Minute, running)
	if w := waitContainer(t, c, "web", "running", time.Second, running); w.Pid != webPid {
		t.Errorf("web was restarted (pid %d, then %d) by a change to other containers", webPid, w.Pid)
	}

	// Next boot without the volume: the images come from containerd's store.
	powerdown(t, vm)
	vm.Kill()
	vm2, endpoint2 := bootVM(t, disk, nil)
	expect(t, vm2, readyRE.String())
	c2 := devClient(t, endpoint2)
	waitContainer(t, c2, "web", "running from the stored image", 3*time.Minute, running)
	waitContainer(t, c2, "late", "running from the stored image", time.Minute, running)
	waitLog(t, c2, "web", `(?s)-- boot .*hello: host=web.*-- boot .*hello: host=web`, time.Minute)
}
