package image

import (
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/filecon"
	"github.com/ballast-os/ballast/tests/ociimage"
)

const selinuxUserData = `[settings.host-containers.web]
source = "oci-archive:/run/cidata/idle.tar"
enabled = true

[settings.host-containers.admin]
source = "oci-archive:/run/cidata/idle.tar"
enabled = true
superpowered = true
`

// TestSELinux boots with a default and a superpowered container and checks, from outside and
// from the host's own view: enforcing with the build's policy (handleunknown reject, so a kernel
// class the policy lacks would have stopped the boot), no way back to permissive from the API or
// the console shell, the services and containers in their domains, and the labels of key paths
// as the build's file_contexts says. The escape suite checks the rest from inside containers
// (other containers' files, /local, selinuxfs from a superpowered container).
func TestSELinux(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	probe := goProgram(t, "./tests/escape/cmd/probe")
	bin, err := ociimage.Program(probe, "/probe")
	if err != nil {
		t.Fatal(err)
	}
	idle := imageArchive(t, ociimage.Image{Ref: "ballast.test/idle:1", Files: []ociimage.File{bin}, Entrypoint: []string{"/probe", "idle"}}, false)
	seed := makeSeed(t, selinuxUserData, map[string]string{"idle.tar": idle})
	vm, endpoint := bootVM(t, copyDisk(t, 2<<30), []string{seed})
	lines := expect(t, vm, `selinux enforcing, policy version (\d+)`)
	if lines[1] != "33" {
		t.Errorf("policy version %s, want 33", lines[1])
	}
	expect(t, vm, readyRE.String())
	c := devClient(t, endpoint)

	rep, err := c.Hardening(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range rep.Checks {
		if ch.ID == "selinux" && (ch.Status != "pass" || !strings.Contains(ch.Observed, "enforcing") || !strings.Contains(ch.Observed, "0 denials")) {
			t.Errorf("hardening report's selinux check: %+v", ch)
		}
	}
	if got := shell(t, vm, 1, "cat /sys/fs/selinux/enforce /sys/fs/selinux/reject_unknown"); got != "11" {
		t.Errorf("enforce, reject_unknown = %q, want 1 1", got)
	}
	// The dev console shell is root with every capability: the policy alone refuses.
	if got := shell(t, vm, 2, "sh -c 'echo 0 > /sys/fs/selinux/enforce; cat /sys/fs/selinux/enforce'"); !strings.HasSuffix(got, "1") || !strings.Contains(got, "denied") {
		t.Errorf("setenforce 0 from the console shell: %q, want permission denied and still 1", got)
	}
	// The denial is in the kernel's log, with both contexts, and counted in the hardening report.
	waitLog(t, c, "kernel", `avc:\s+denied\s+\{ write \} .*scontext=system_u:system_r:console_t:s0 tcontext=system_u:object_r:security_t:s0 tclass=file`, time.Minute)
	if rep, err := c.Hardening(t.Context()); err != nil {
		t.Error(err)
	} else {
		for _, ch := range rep.Checks {
			if ch.ID == "selinux" && !strings.Contains(ch.Observed, "1 denial") {
				t.Errorf("hardening report after one denial: %q", ch.Observed)
			}
		}
	}
	// No setting turns SELinux off: an unknown key is refused by name.
	if _, err := c.Set(t.Context(), []string{"settings.selinux.enforcing=false"}); err == nil || !strings.Contains(err.Error(), "selinux") {
		t.Errorf("setting settings.selinux.enforcing: %v, want an error naming the key", err)
	}
	// Domains, from /proc/<pid>/attr/current on the host.
	web := waitContainer(t, c, "web", "running", 3*time.Minute, running)
	admin := waitContainer(t, c, "admin", "running", 3*time.Minute, running)
	domains := map[string]string{
		"1":                   `^system_u:system_r:init_t:s0$`,
		"$(pidof apiserver)":  `^system_u:system_r:api_t:s0$`,
		"$(pidof containerd)": `^system_u:system_r:runtime_t:s0$`,
		"$(pidof hostctr)":    `^system_u:system_r:hostctr_t:s0$`,
		"$(pidof netconf)":    `^system_u:system_r:netconf_t:s0$`,
		"$(pidof timesync)":   `^system_u:system_r:timesync_t:s0$`,
		"$(pidof containerd-shim-runc-v2 | cut -d' ' -f1)": `^system_u:system_r:runtime_t:s0$`,
		strconv.Itoa(web.Pid):                              `^system_u:system_r:container_t:s0:c\d+,c\d+$`,
		strconv.Itoa(admin.Pid):                            `^system_u:system_r:super_t:s0$`,
	}
	n := 10
	for pid, want := range domains {
		n++
		got := strings.TrimRight(shell(t, vm, n, "cat /proc/"+pid+"/attr/current"), "\x00")
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("process %s runs as %q, want %s", pid, got, want)
		}
	}
	webLevel := strings.SplitN(web.Label, ":", 4)[3]

	// Labels, read by the superpowered container on the host's root, against the build's file_contexts.
	fc, err := filecon.Load(filepath.Join(buildDir, "work", "file_contexts"))
	if err != nil {
		t.Fatal(err)
	}
	paths := []string{"/", "/usr/sbin/init", "/usr/bin/apiserver", "/usr/bin/apiclient", "/usr/bin/containerd",
		"/usr/sbin/runc", "/usr/bin/hostctr", "/usr/libexec/cni/bridge", "/usr/lib/modules", contract.SELinuxPolicy,
		"/etc", "/run", "/tmp", "/dev/null", "/dev/kmsg", "/dev/console", "/local", "/local/var", "/local/var/log",
		"/local/var/lib/ballast", contract.DatastoreDir, contract.ContainerdRoot}
	files := map[string]bool{"/usr/sbin/init": true, "/usr/bin/apiserver": true, "/usr/bin/apiclient": true,
		"/usr/bin/containerd": true, "/usr/sbin/runc": true, "/usr/bin/hostctr": true, "/usr/libexec/cni/bridge": true,
		contract.SELinuxPolicy: true}
	var args []string
	for _, p := range paths {
		args = append(args, filepath.Join("/.ballast/rootfs", p))
	}
	// Made at run time: their types come from the policy's type transitions.
	runtime := map[string]string{
		contract.ContainersConfigPath: "secret_t",
		"/etc/hostname":               "etc_t",
		contract.APISocket:            "api_sock_t",
		contract.InitSocket:           "init_sock_t",
		contract.ContainerdSocket:     "runtime_run_t",
		contract.PersistentLogDir:     "log_t",
		// Made by the initramfs's first stage before the policy, labelled by its second.
		contract.BootSecurityPath: "boot_security_t",
		"/run/ballast":            "run_t",
	}
	for p := range runtime {
		args = append(args, filepath.Join("/.ballast/rootfs", p))
	}
	args = append(args, "/.ballast/rootfs"+contract.ContainerStorageDir+"/web")
	out, stderr, code, err := execIn(t, c, "admin", append([]string{"/probe", "labels"}, args...)...)
	if err != nil || code != 0 {
		t.Fatalf("probe labels: %v, exit %d: %s", err, code, stderr)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		p, label, _ := strings.Cut(l, " ")
		p = strings.TrimPrefix(p, "/.ballast/rootfs")
		if p == "" {
			p = "/"
		}
		got[p] = label
	}
	for _, p := range paths {
		want, ok := fc.Lookup(p, fs.ModeDir)
		if files[p] {
			want, ok = fc.Lookup(p, 0o755)
		}
		if p == "/dev/null" || p == "/dev/kmsg" || p == "/dev/console" {
			want, ok = fc.Lookup(p, fs.ModeDevice|fs.ModeCharDevice|0o666)
		}
		if !ok {
			t.Errorf("%s: no file context", p)
			continue
		}
		if got[p] != want {
			t.Errorf("%s is labelled %q, file_contexts says %q", p, got[p], want)
		}
	}
	for p, typ := range runtime {
		if want := "system_u:object_r:" + typ + ":s0"; got[p] != want {
			t.Errorf("%s is labelled %q, want %q", p, got[p], want)
		}
	}
	if want := "system_u:object_r:container_file_t:" + webLevel; got[contract.ContainerStorageDir+"/web"] != want {
		t.Errorf("web's storage is labelled %q, want %q (its own level)", got[contract.ContainerStorageDir+"/web"], want)
	}
}
