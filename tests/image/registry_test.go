package image

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/tests/registry"
)

// TestRegistryPull pulls host container images from a real registry on this machine's loopback,
// reached from the guest through QEMU's guestfwd at 10.0.2.100:5000: TLS with a CA that only
// settings.pki makes trusted, basic-auth credentials from settings.container-registry, and a
// mirror that stands in for a registry name the guest cannot reach. A missing image is an error
// in GET /services, not a stuck boot.
func TestRegistryPull(t *testing.T) {
	t.Parallel() // boots QEMU: see main_test.go
	reg := registry.Start(t, registry.Options{Hostnames: []string{"10.0.2.100"}})
	hello := goProgram(t, "./tests/image/hello")
	ref := "10.0.2.100:5000/ballast/hello:1"
	digest, err := reg.PushArchive(t.Context(), imageArchive(t, helloImage(t, hello), false), ref)
	if err != nil {
		t.Fatal(err)
	}
	ud := fmt.Sprintf(`[settings.host-containers.pulled]
source = %q
enabled = true

[settings.host-containers.mirrored]
source = "registry.invalid/ballast/hello:1"
enabled = true

[settings.host-containers.missing]
source = "10.0.2.100:5000/ballast/missing:1"
enabled = true

[settings.container-registry.mirrors]
"registry.invalid" = ["https://10.0.2.100:5000"]

[settings.container-registry.credentials."10.0.2.100:5000"]
username = %q
password = %q

[settings.pki.registry]
data = %q
trusted = true
`, ref, reg.Username, reg.Password, base64.StdEncoding.EncodeToString(reg.CACertPEM))
	vm, endpoint := bootVM(t, copyDisk(t, 2<<30), []string{makeSeed(t, ud, nil)}, "tcp:10.0.2.100:5000-cmd:"+goProgram(t, "./tests/qemu/cmd/tcpcat")+" "+reg.Addr)
	expect(t, vm, readyRE.String())
	c := devClient(t, endpoint)
	waitContainer(t, c, "pulled", "running", 3*time.Minute, running)
	waitLog(t, c, "pulled", `hello: host=pulled`, time.Minute)
	waitContainer(t, c, "mirrored", "running", 2*time.Minute, running)
	miss := waitContainer(t, c, "missing", "failing", time.Minute, func(s contract.ServiceStatus) bool { return s.Error != "" })
	if !strings.Contains(miss.Error, "not found") {
		t.Errorf("missing image: error %q, want a not found", miss.Error)
	}
	if l := logOf(t, c, "host-containers"); !strings.Contains(l, ref+": pulled "+digest) {
		t.Errorf("the manager's log does not say it pulled %s (%s):\n%s", ref, digest, l)
	}
}
