package report

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/apiserver/api"
	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/builder/devpki"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/efivar"
	"github.com/ballast-os/ballast/init/harden"
	"github.com/ballast-os/ballast/init/harden/hardentest"
	"github.com/ballast-os/ballast/init/initramfs/dm"
)

const rootHash = "c849410e04c1989904383342ad3add4b23ec91e501282dae0c3d6e4f74f601fa"

const goodMountinfo = `20 1 253:0 / / ro,relatime shared:1 - erofs /dev/ballast-root ro
21 20 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs devtmpfs rw,mode=755
22 20 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:3 - proc proc rw
23 20 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:4 - sysfs sysfs rw
24 20 0:22 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,mode=755
25 20 254:6 / /local rw,nosuid,nodev,noatime shared:6 - ext4 /dev/vda6 rw
26 20 0:23 / /etc rw,nosuid,nodev,noexec,relatime shared:7 - tmpfs tmpfs rw,mode=755
27 21 0:24 / /dev/shm rw,nosuid,nodev,noexec,relatime shared:8 - tmpfs shm rw
28 20 0:25 / /tmp rw,nosuid,nodev,noexec,relatime shared:9 - tmpfs tmpfs rw
`

// A listening TCP socket on 127.0.0.1:8080 and a connected UDP one, which is not listening.
const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// The firmware's Secure Boot variables under a test root: attributes, then one byte.
var (
	secureBootVar = filepath.Join(contract.EFIVarsMount, efivar.SecureBootVar+"-"+efivar.GlobalGUID)
	setupModeVar  = filepath.Join(contract.EFIVarsMount, efivar.SetupModeVar+"-"+efivar.GlobalGUID)
)

// encryptedRecord is the initramfs's record of a boot that opened an encrypted /local with the TPM.
const encryptedRecord = `{"tpm":{"pcrs":{"7":"aa","11":"bb"},"pcr11_signed":true,"pcr11_signature":"owner's key 1234",
	"left_initrd":true,"event_log":{"events":42}},
	"local":{"state":"encrypted","reason":"unlocked with the TPM","unlock_seconds":0.4,"sealed_pcrs":[7,11],"cipher":"aes-xts-plain64"}}`

// plainRecord is the record of a boot without a TPM that kept /local plain.
const plainRecord = `{"local":{"state":"plain","reason":"no TPM"}}`

// machine is a root where every check passes.
func machine(t *testing.T) string {
	t.Helper()
	root := hardentest.Root(t)
	k := harden.Kernel{Root: root}
	if _, err := k.ApplySysctls(contract.KernelPolicy{}); err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string]string{
		"proc/self/mountinfo":                  goodMountinfo,
		"proc/cmdline":                         "lsm=" + contract.LSMs + " roothash=" + rootHash + " ballast.slot=a\n",
		"sys/dev/block/253:0/dm/name":          "root\n",
		contract.LockdownFile:                  "none [integrity] confidentiality\n",
		contract.LSMFile:                       "lockdown,capability,landlock,yama,selinux,bpf",
		contract.ImageInfoPath:                 `{"variant":"qemu","dev":false,"signed":true,"kernel":"` + hardentest.Kver + `"}`,
		secureBootVar:                          "\x06\x00\x00\x00\x01",
		setupModeVar:                           "\x06\x00\x00\x00\x00",
		contract.BootSecurityPath:              encryptedRecord,
		"proc/net/tcp":                         tcpHeader,
		"proc/net/tcp6":                        tcpHeader,
		"proc/net/udp":                         tcpHeader + "   1: 0F02000A:A3E4 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 1 2\n",
		"proc/net/udp6":                        tcpHeader,
		"usr/bin/apiclient":                    "",
		contract.SELinuxEnforce:                "1\n",
		contract.SELinuxPolicyVers:             "33\n",
		contract.SELinuxFS + "/deny_unknown":   "1\n",
		contract.SELinuxFS + "/reject_unknown": "0\n",
		contract.SELinuxDenials:                "3\n",
	} {
		write(t, root, p, content)
	}
	return root
}

func write(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func verityTable(string) ([]dm.Target, error) {
	return []dm.Target{{Type: "verity", Params: "1 254:2 254:3 4096 4096 21124 1 sha256 " + rootHash + " 00ff"}}, nil
}

func decode(t *testing.T, body string) settings.Settings {
	t.Helper()
	s, err := settings.DecodeJSON(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHardening(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		change   func(t *testing.T, root string)
		dm       func(string) ([]dm.Target, error)
		// listeners are declared by the image's services (a Kubernetes node's).
		listeners []contract.Listener
		// id → status and a part of observed + reason; every other check must be as on a good machine.
		want map[string][2]string
	}{
		{name: "good machine"},
		{name: "weakened by settings", settings: `{"kernel":{"sysctl":{"kernel.kptr_restrict":"0"}}}`,
			change: func(t *testing.T, root string) { write(t, root, "proc/sys/kernel/kptr_restrict", "0\n") },
			want:   map[string][2]string{"sysctl.kernel.kptr_restrict": {"fail", `overridden by settings: settings.kernel.sysctl."kernel.kptr_restrict" = "0"`}}},
		{name: "weakened behind settings' back",
			change: func(t *testing.T, root string) { write(t, root, "proc/sys/fs/protected_regular", "1\n") },
			want:   map[string][2]string{"sysctl.fs.protected_regular": {"fail", "weaker than Ballast's default, and no setting asks for it"}}},
		{name: "stricter setting not in effect", settings: `{"kernel":{"sysctl":{"kernel/kptr_restrict":"2"}}}`,
			want: map[string][2]string{"sysctl.kernel.kptr_restrict": {"fail", `differs from settings.kernel.sysctl."kernel.kptr_restrict" = "2"`}}},
		{name: "one-way sysctl waits for the next boot", settings: `{"kernel":{"sysctl":{"kernel.kexec_load_disabled":"0"}}}`,
			want: map[string][2]string{"sysctl.kernel.kexec_load_disabled": {"pass", "1 (settings ask for 0 from the next boot)"}}},
		{name: "lockdown lowered, next boot", settings: `{"kernel":{"lockdown":"none"}}`,
			want: map[string][2]string{"lockdown": {"pass", "integrity (settings ask for none from the next boot)"}}},
		{name: "lockdown lowered, in effect", settings: `{"kernel":{"lockdown":"none"}}`,
			change: func(t *testing.T, root string) {
				write(t, root, contract.LockdownFile, "[none] integrity confidentiality\n")
			},
			want: map[string][2]string{"lockdown": {"fail", `overridden by settings: settings.kernel.lockdown = "none"`}}},
		{name: "no lockdown",
			change: func(t *testing.T, root string) {
				write(t, root, contract.LockdownFile, "[none] integrity confidentiality\n")
			},
			want: map[string][2]string{"lockdown": {"fail", "none"}}},
		{name: "confidentiality asked for", settings: `{"kernel":{"lockdown":"confidentiality"}}`,
			want: map[string][2]string{"lockdown": {"fail", "below the level settings ask for"}}},
		{name: "tmp executable and root writable",
			change: func(t *testing.T, root string) {
				m := strings.Replace(goodMountinfo, "/tmp rw,nosuid,nodev,noexec", "/tmp rw,nosuid,nodev", 1)
				write(t, root, "proc/self/mountinfo", strings.Replace(m, "/ / ro,relatime", "/ / rw,relatime", 1))
			},
			want: map[string][2]string{"mount-tmp": {"fail", "lacks noexec"}, "root-read-only": {"fail", "/ is writable"}}},
		{name: "not verity", dm: func(string) ([]dm.Target, error) { return []dm.Target{{Type: "linear", Params: "254:2 0"}}, nil },
			want: map[string][2]string{"verity-root": {"fail", "not a single verity target"}}},
		{name: "another root hash",
			change: func(t *testing.T, root string) {
				write(t, root, "proc/cmdline", "roothash="+strings.Repeat("0", 64)+"\n")
			},
			want: map[string][2]string{"verity-root": {"fail", "differs from the command line's"}}},
		{name: "undeclared listener",
			change: func(t *testing.T, root string) {
				write(t, root, "proc/net/tcp", tcpHeader+"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
			},
			want: map[string][2]string{"listeners": {"fail", "undeclared: tcp 0.0.0.0:22"}}},
		{name: "remote API declared by settings", settings: `{"api":{"remote":{"enabled":true,"listen":":50443"}}}`,
			change: func(t *testing.T, root string) {
				write(t, root, "proc/net/tcp6", tcpHeader+"   0: 00000000000000000000000000000000:C50B 00000000000000000000000000000000:0000 0A 0 0 0 0 0 1 1\n")
			},
			want: map[string][2]string{"listeners": {"pass", "tcp6 [::]:50443"}}},
		{name: "listener declared by the image", listeners: []contract.Listener{{Proto: "tcp", Port: 22, Who: "test"}},
			change: func(t *testing.T, root string) {
				write(t, root, "proc/net/tcp", tcpHeader+"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
			},
			want: map[string][2]string{"listeners": {"pass", "tcp 0.0.0.0:22"}}},
		{name: "shell in production", change: func(t *testing.T, root string) { write(t, root, "usr/bin/sh", "") },
			want: map[string][2]string{"no-interpreters": {"fail", "/usr/bin/sh — a production image holds a shell"}}},
		{name: "shell in a dev image",
			change: func(t *testing.T, root string) {
				write(t, root, "usr/bin/busybox", "")
				write(t, root, contract.ImageInfoPath, `{"dev":true,"kernel":"`+hardentest.Kver+`"}`)
			},
			want: map[string][2]string{"no-interpreters": {"expected-fail", "/usr/bin/busybox — dev variant"}}},
		{name: "interpreters on other mounts do not count",
			change: func(t *testing.T, root string) { write(t, root, "local/root/python3", "") }},
		{name: "blocked module loaded, helper elsewhere", settings: `{"kernel":{"modules":{"b-mod":{"allowed":false}}}}`,
			change: func(t *testing.T, root string) {
				write(t, root, "sys/module/b_mod/initstate", "live\n")
				write(t, root, "proc/sys/kernel/modprobe", "/sbin/modprobe\n")
			},
			want: map[string][2]string{"module-policy": {"fail", "blocked b_mod: loaded, file loadable — the kernel runs /sbin/modprobe"}}},
		{name: "blocked module kept out", settings: `{"kernel":{"modules":{"b-mod":{"allowed":false}}}}`,
			change: func(t *testing.T, root string) {
				ko := filepath.Join(root, contract.KernelModules, hardentest.Kver, "kernel/b-mod.ko")
				os.Remove(ko)
				if err := os.Link(filepath.Join(root, contract.EmptyFile), ko); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string][2]string{"module-policy": {"pass", "blocked b_mod: not loaded, file covered"}}},
		{name: "selinux permissive", change: func(t *testing.T, root string) { write(t, root, contract.SELinuxEnforce, "0") },
			want: map[string][2]string{"selinux": {"fail", "permissive; policy version 33; deny_unknown 1, reject_unknown 0; 3 denials this boot — SELinux is permissive"}}},
		{name: "selinux without a policy", change: func(t *testing.T, root string) { os.RemoveAll(filepath.Join(root, contract.SELinuxFS)) },
			want: map[string][2]string{"selinux": {"fail", "disabled (selinuxfs not mounted; SELinux is an active LSM without a policy) — no SELinux policy is loaded"}}},
		{name: "selinux not an LSM", change: func(t *testing.T, root string) {
			os.RemoveAll(filepath.Join(root, contract.SELinuxFS))
			write(t, root, contract.LSMFile, "lockdown,capability,yama,bpf")
		}, want: map[string][2]string{"selinux": {"fail", "disabled (SELinux is not an active LSM)"}}},
		{name: "selinux denials unknown", change: func(t *testing.T, root string) { os.Remove(filepath.Join(root, contract.SELinuxDenials)) },
			want: map[string][2]string{"selinux": {"pass", "enforcing; policy version 33; deny_unknown 1, reject_unknown 0; unknown denials this boot"}}},
		{name: "secure boot enabled, encrypted local", want: map[string][2]string{
			"secure-boot": {"pass", "enabled"}, "local-encryption": {"pass", "encrypted (unlocked with the TPM), aes-xts-plain64"}}},
		{name: "unsigned dev build without secure boot and TPM",
			change: func(t *testing.T, root string) {
				write(t, root, secureBootVar, "\x06\x00\x00\x00\x00")
				write(t, root, contract.ImageInfoPath, `{"dev":false,"kernel":"`+hardentest.Kver+`"}`)
				write(t, root, contract.BootSecurityPath, plainRecord)
			},
			want: map[string][2]string{"secure-boot": {"expected-fail", "disabled — unsigned image (a dev build)"},
				"local-encryption": {"expected-fail", "plain (no TPM) — no TPM, and the image keeps /local plain without one (ballast.local.without-tpm=plain): no TPM"}}},
		{name: "signed image in setup mode",
			change: func(t *testing.T, root string) { write(t, root, setupModeVar, "\x06\x00\x00\x00\x01") },
			want:   map[string][2]string{"secure-boot": {"fail", "setup-mode — the image is signed, but the firmware is in setup mode"}}},
		{name: "signed image, secure boot disabled",
			change: func(t *testing.T, root string) { write(t, root, secureBootVar, "\x06\x00\x00\x00\x00") },
			want:   map[string][2]string{"secure-boot": {"fail", "disabled — the image is signed, but Secure Boot is disabled"}}},
		{name: "signed image, no efivarfs",
			change: func(t *testing.T, root string) { os.RemoveAll(filepath.Join(root, contract.EFIVarsMount)) },
			want:   map[string][2]string{"secure-boot": {"fail", "unsupported — the image is signed, but the firmware has no Secure Boot variables"}}},
		{name: "malformed SecureBoot variable",
			change: func(t *testing.T, root string) { write(t, root, secureBootVar, "\x06\x00\x00\x00\x02") },
			want:   map[string][2]string{"secure-boot": {"fail", "efi variable SecureBoot: [2]"}}},
		{name: "no boot security record",
			change: func(t *testing.T, root string) { os.Remove(filepath.Join(root, contract.BootSecurityPath)) },
			want:   map[string][2]string{"local-encryption": {"fail", "no boot security record"}}},
		{name: "plain where the image wants the TPM, and has one",
			change: func(t *testing.T, root string) {
				write(t, root, contract.BootSecurityPath, `{"tpm":{"pcrs":{}},"local":{"state":"plain","reason":"sealing failed"}}`)
			},
			want: map[string][2]string{"local-encryption": {"fail", "plain (sealing failed) — the machine has a TPM and the image wants /local encrypted"}}},
		{name: "plain without a TPM where the image refuses that",
			change: func(t *testing.T, root string) {
				write(t, root, contract.ImageInfoPath, `{"signed":true,"kernel":"`+hardentest.Kver+`","local":{"encryption":"tpm","without_tpm":"refuse"}}`)
				write(t, root, contract.BootSecurityPath, plainRecord)
			},
			want: map[string][2]string{"local-encryption": {"fail", "refuses a plain /local without one"}}},
		{name: "plain by the image's choice",
			change: func(t *testing.T, root string) {
				write(t, root, contract.ImageInfoPath, `{"signed":true,"kernel":"`+hardentest.Kver+`","local":{"encryption":"plain","without_tpm":"refuse"}}`)
				write(t, root, contract.BootSecurityPath, `{"tpm":{"pcrs":{}},"local":{"state":"plain","reason":"ballast.local=plain"}}`)
			},
			want: map[string][2]string{"local-encryption": {"expected-fail", "the image keeps /local plain (ballast.local=plain)"}}},
		{name: "record says neither",
			change: func(t *testing.T, root string) {
				write(t, root, contract.BootSecurityPath, `{"local":{"state":"maybe"}}`)
			},
			want: map[string][2]string{"local-encryption": {"fail", `says "maybe"`}}},
		{name: "record is not JSON",
			change: func(t *testing.T, root string) { write(t, root, contract.BootSecurityPath, `{"local":`) },
			want:   map[string][2]string{"local-encryption": {"fail", "boot security record /run/ballast/boot-security.json: unexpected end of JSON input"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := machine(t)
			if tt.change != nil {
				tt.change(t, root)
			}
			s := decode(t, "{}")
			if tt.settings != "" {
				s = decode(t, tt.settings)
			}
			if tt.dm == nil {
				tt.dm = verityTable
			}
			rep := New(Sources{Root: root, Settings: func() settings.Settings { return s }, DMTable: tt.dm, Listeners: tt.listeners}).Hardening(context.Background())
			want := map[string][2]string{"selinux": {"pass", "enforcing; policy version 33; deny_unknown 1, reject_unknown 0; 3 denials this boot"}}
			for id, w := range tt.want {
				want[id] = w
			}
			seen := map[string]bool{}
			failed := 0
			for _, c := range rep.Checks {
				if seen[c.ID] {
					t.Errorf("check %s twice", c.ID)
				}
				seen[c.ID] = true
				if c.Status == apitypes.CheckFail {
					failed++
				}
				text := c.Observed
				if c.Reason != "" {
					text += " — " + c.Reason
				}
				w, ok := want[c.ID]
				if !ok {
					w = [2]string{"pass", ""}
				}
				if c.Status != w[0] || !strings.Contains(text, w[1]) || c.Title == "" {
					t.Errorf("%s: %s %q, want %s with %q", c.ID, c.Status, text, w[0], w[1])
				}
			}
			if rep.Failed != failed || rep.Passed+rep.Failed+rep.ExpectedFail != len(rep.Checks) {
				t.Errorf("counts %d/%d/%d of %d checks", rep.Passed, rep.Failed, rep.ExpectedFail, len(rep.Checks))
			}
			for id := range want {
				if !seen[id] {
					t.Errorf("no check %s", id)
				}
			}
			if n := len(contract.HardenedSysctls()) + 15; len(rep.Checks) != n {
				t.Errorf("%d checks, want %d", len(rep.Checks), n)
			}
		})
	}
}

func TestRemoteAPIProbe(t *testing.T) {
	dir := t.TempDir()
	if err := devpki.GenerateDev(dir, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	strict, err := api.TLSConfig(read(contract.PKIServerCert), read(contract.PKIServerKey), read(contract.PKICACert))
	if err != nil {
		t.Fatal(err)
	}
	lax := strict.Clone()
	lax.ClientAuth = tls.VerifyClientCertIfGiven
	for _, tt := range []struct {
		name   string
		cfg    *tls.Config
		status string
		text   string
	}{
		{"client certificates required", strict, apitypes.CheckPass, "refused: remote error: tls: certificate required"},
		{"client certificates optional", lax, apitypes.CheckFail, "served a client without a certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := api.ListenTLS("127.0.0.1:0", tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "{}") }),
				ErrorLog: log.New(io.Discard, "", 0)}
			go srv.Serve(ln)
			defer srv.Close()
			c := remoteAPI(context.Background(), ln.Addr())
			if c.Status != tt.status || !strings.Contains(c.Observed+" "+c.Reason, tt.text) {
				t.Errorf("%s: %+v, want %s with %q", tt.name, c, tt.status, tt.text)
			}
		})
	}
	// Nothing listening where the listener was said to be: not a pass.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr()
	ln.Close()
	if c := remoteAPI(context.Background(), addr); c.Status != apitypes.CheckFail {
		t.Errorf("probe of a closed port: %+v", c)
	}
}

func TestParseHexAddr(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000000000000000000001000000:0035", "[::1]:53"},
		{"0000000000000000FFFF00000F02000A:C4EB", "10.0.2.15:50411"},
	} {
		ip, port, err := parseHexAddr(tt.in)
		if got := net.JoinHostPort(ip.String(), fmt.Sprint(port)); err != nil || got != tt.want {
			t.Errorf("parseHexAddr(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"0100007F", "0100007F:XYZ", "01007F:0016"} {
		if _, _, err := parseHexAddr(bad); err == nil {
			t.Errorf("parseHexAddr(%q) accepted", bad)
		}
	}
}
