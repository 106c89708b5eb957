package image

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/nettest"
	"github.com/ballast-os/ballast/tests/qemu"
	"github.com/ballast-os/ballast/tests/testutil"
)

// The EC2 network of TestAWSNVMeIMDS: the guest's second NIC is on a tap device in a network
// namespace of the test's, whose side holds the router's address and the metadata service's.
var (
	awsRouter = netip.MustParseAddr("10.0.3.1")
	awsGuest  = netip.MustParseAddr("10.0.3.15")
	awsIMDS   = netip.MustParseAddr("169.254.169.254")
)

// fakeIMDS is an EC2 instance metadata service, version 2 only: a session token from
// PUT /latest/api/token (which must say how long it wants the token), and GETs that must carry one.
type fakeIMDS struct {
	userData, hostname string

	mu     sync.Mutex
	tokens map[string]bool
	log    []imdsRequest
}

// imdsRequest is one request the service answered.
type imdsRequest struct {
	Method, Path string
	Token        string // the token a GET carried, or the one a PUT handed out
	Status       int
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, token := f.answer(r)
	f.mu.Lock()
	f.log = append(f.log, imdsRequest{Method: r.Method, Path: r.URL.Path, Token: token, Status: status})
	f.mu.Unlock()
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func (f *fakeIMDS) answer(r *http.Request) (status int, body, token string) {
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			return http.StatusMethodNotAllowed, "", ""
		}
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			return http.StatusBadRequest, "", ""
		}
		b := make([]byte, 16)
		rand.Read(b)
		token = hex.EncodeToString(b)
		f.mu.Lock()
		f.tokens[token] = true
		f.mu.Unlock()
		return http.StatusOK, token, token
	}
	if r.Method != http.MethodGet {
		return http.StatusMethodNotAllowed, "", ""
	}
	token = r.Header.Get("X-aws-ec2-metadata-token")
	f.mu.Lock()
	valid := f.tokens[token]
	f.mu.Unlock()
	if !valid {
		return http.StatusUnauthorized, "", token
	}
	switch r.URL.Path {
	case "/latest/user-data":
		return http.StatusOK, f.userData, token
	case "/latest/meta-data/local-hostname":
		return http.StatusOK, f.hostname, token
	}
	return http.StatusNotFound, "", token
}

func (f *fakeIMDS) requests() []imdsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]imdsRequest(nil), f.log...)
}

// checkTokens reports GETs that came without a token handed out by an earlier PUT, and whether
// the user data and the host name were fetched.
func (f *fakeIMDS) checkTokens(t *testing.T) {
	t.Helper()
	issued := map[string]bool{}
	got := map[string]bool{}
	for _, r := range f.requests() {
		switch {
		case r.Method == http.MethodPut && r.Status == http.StatusOK:
			issued[r.Token] = true
		case r.Method == http.MethodGet && !issued[r.Token]:
			t.Errorf("IMDS: GET %s without a token from an earlier PUT (status %d)", r.Path, r.Status)
		case r.Method == http.MethodGet && r.Status == http.StatusOK:
			got[r.Path] = true
		}
	}
	for _, p := range []string{"/latest/user-data", "/latest/meta-data/local-hostname"} {
		if !got[p] {
			t.Errorf("IMDS: the guest never fetched %s: %+v", p, f.requests())
		}
	}
}

// serveIMDS runs f on port 80 of the metadata address inside the namespace.
func serveIMDS(t *testing.T, ns *nettest.Netns, f *fakeIMDS) {
	t.Helper()
	var ln net.Listener
	err := ns.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(awsIMDS, 80).String())
		return err
	})
	if err != nil {
		t.Fatalf("IMDS listener: %v", err)
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// TestAWSNVMeIMDS boots the aws image as an EC2 Nitro instance looks to it: the disk an NVMe
// namespace (never nvme0n1 here: first the second namespace of one controller, then the only
// namespace of a second controller), SMBIOS saying "Amazon EC2", and a network whose DHCP server
// and IMDSv2 are the test's. The host must take its user data and its name from the metadata
// service, asking for a session token first every time.
//
// QEMU has no ENA, and the aws image drives no NIC QEMU has: the test builds the variant with
// virtio_pci and virtio_net among its on-demand drivers, and nothing else changed.
func TestAWSNVMeIMDS(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	testutil.Root(t, "a network namespace and a tap device carry the guest's DHCP and metadata traffic")
	const ena = `hardware-modules = ["ena"]`
	dir := variantEdited(t, "aws", func(s string) string {
		if !strings.Contains(s, ena) {
			t.Fatalf("variants/aws.toml has no %s", ena)
		}
		// virtio_pci drives the PCI function and makes the virtio device virtio_net binds to.
		return strings.Replace(s, ena, `hardware-modules = ["ena", "virtio_pci", "virtio_net"]`, 1)
	})
	for _, layout := range []struct {
		name        string
		disk        qemu.NVMeSlot
		scratch     qemu.NVMeSlot
		wantDevName string
	}{
		{"nvme0n2", qemu.NVMeSlot{Controller: 0, NSID: 2}, qemu.NVMeSlot{Controller: 0, NSID: 1}, "nvme0n2"},
		{"nvme1n1", qemu.NVMeSlot{Controller: 1, NSID: 1}, qemu.NVMeSlot{Controller: 0, NSID: 1}, "nvme1n1"},
	} {
		t.Run(layout.name, func(t *testing.T) {
			pki := newProdPKI(t)
			want := "from imds on " + layout.name
			imds := &fakeIMDS{tokens: map[string]bool{},
				userData: pki.userData(t, fmt.Sprintf("[settings]\nmotd = %q\n", want)),
				hostname: "ip-10-0-3-15.ec2.internal"}
			ns := nettest.NewNetns(t)
			tap := ns.Tap(t, "tap0", netip.PrefixFrom(awsRouter, 24).String(), netip.PrefixFrom(awsIMDS, 32).String())
			dhcp := &nettest.DHCPv4Server{ServerIP: awsRouter, First: awsGuest, Bits: 24, LeaseTime: time.Hour,
				Routers: []netip.Addr{awsRouter}}
			dhcp.Start(t, ns, "tap0")
			serveIMDS(t, ns, imds)

			// eth0 is QEMU's user network, which carries only the test's forward to the API (it
			// gives no router on a restricted network); eth1 is the VPC's, with the default route.
			m := bootProd(t, "aws-"+layout.name, qemu.Config{
				Disk: copyVariantDisk(t, dir, 2<<30), DiskBus: qemu.BusNVMe, DiskNVMe: layout.disk,
				Drives:  []qemu.Drive{{Path: blankDisk(t, 256<<20), Bus: qemu.BusNVMe, NVMe: layout.scratch}},
				TapNICs: []qemu.TapNIC{{File: tap, ID: "vpc", MAC: "52:54:00:ec:02:01"}},
				SMBIOS:  qemu.SMBIOSSystem{Manufacturer: "Amazon EC2", Product: "m5.large", UUID: "ec2e1916-9099-7caf-fd21-012345abcdef"},
			}, pki)

			m.checkOS(t, "aws")
			if mods := onDemandModules(t, m); !slices.Contains(mods, "virtio_net") || slices.Contains(mods, "ena") {
				t.Errorf("modules loaded on demand %v: want virtio_net and not ena", mods)
			}
			ud := m.userDataFrom(t, contract.UserDataIMDS)
			for _, s := range ud.Sources {
				if s.Name == contract.UserDataIMDS && s.Origin != "http://169.254.169.254/latest/user-data" {
					t.Errorf("imds user data from %q", s.Origin)
				}
			}
			if got := motd(t, m.c); got != want {
				t.Errorf("motd %q, want %q from IMDS", got, want)
			}
			st := m.network(t, "the lease on eth1 and the host name from IMDS", func(st apitypes.Network) bool {
				return hasAddr(ifaceOf(st, "eth1"), netip.PrefixFrom(awsGuest, 24).String(), contract.SourceDHCP4) &&
					st.Hostname.Name == imds.hostname
			})
			if st.Hostname.Source != "metadata" {
				t.Errorf("host name %+v, want it from the metadata", st.Hostname)
			}
			if !hasRoute(st, contract.RouteState{To: "default", Via: awsRouter.String(), Interface: "eth1", Protocol: "dhcp"}) {
				t.Errorf("no default route via %s on eth1: %+v", awsRouter, st.Routes)
			}
			imds.checkTokens(t)
			// The root the host booted is on the NVMe namespace the test put the disk at.
			m.rootOn(t, layout.wantDevName+"p")
		})
	}
}

// TestAWSAMI checks the files an AMI import takes: disk.vmdk holds disk.raw, and ami.json beside
// it imports that file as a snapshot and registers a UEFI x86-64 image with ENA whose root device
// is a volume large enough for the disk. It reads ami.json as EC2's API would take it, by the
// API's field names, not through the writer's types.
func TestAWSAMI(t *testing.T) {
	dir := variantBuildDir(t, "aws")
	raw := filepath.Join(dir, "disk.raw")
	qemuImgCompare(t, filepath.Join(dir, "disk.vmdk"), raw)
	b, err := os.ReadFile(filepath.Join(dir, "ami.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ami struct {
		ImportSnapshot struct {
			DiskContainer struct {
				Format     string
				UserBucket struct{ S3Key string }
			}
		} `json:"import_snapshot"`
		RegisterImage map[string]any `json:"register_image"`
	}
	if err := json.Unmarshal(b, &ami); err != nil {
		t.Fatalf("ami.json: %v\n%s", err, b)
	}
	if dc := ami.ImportSnapshot.DiskContainer; dc.Format != "VMDK" || dc.UserBucket.S3Key != "disk.vmdk" {
		t.Errorf("ami.json: import_snapshot imports %+v, want disk.vmdk as VMDK", dc)
	}
	reg := ami.RegisterImage
	for k, v := range map[string]any{"BootMode": "uefi", "EnaSupport": true, "Architecture": "x86_64"} {
		if reg[k] != v {
			t.Errorf("ami.json: register_image.%s = %v, want %v", k, reg[k], v)
		}
	}
	root, _ := reg["RootDeviceName"].(string)
	st, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	mappings, _ := reg["BlockDeviceMappings"].([]any)
	for _, m := range mappings {
		bdm, _ := m.(map[string]any)
		ebs, _ := bdm["Ebs"].(map[string]any)
		if name, _ := bdm["DeviceName"].(string); name == root && root != "" {
			found = true
			if gib, _ := ebs["VolumeSize"].(float64); int64(gib)<<30 < st.Size() {
				t.Errorf("ami.json: the root volume is %v GiB, the disk %d bytes", gib, st.Size())
			}
		}
	}
	if !found {
		t.Errorf("ami.json: no block device mapping for the root device %q\n%s", root, b)
	}
}
