package timeline

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"
)

const console = `BdsDxe: starting Boot0001
[  2.310000] ballast: initramfs slot=a roothash=91b3
[  2.620000] ballast: modules loaded 12 boot modules
[  2.680000] ballast: partitions root=/dev/vda2 verity=/dev/vda3 data=/dev/vda6
[  2.840000] ballast: root verity root mounted read-only (20699 blocks)
[  3.140000] ballast: data grown from 128 MiB to 166 MiB
[  3.280000] ballast: switch-root exec /usr/sbin/init
[  4.130000] ballast: init variant=qemu version=0.1.0 services=network,apiserver
[  4.500000] ballast: random pool ready after 0.36s (seed none; new seed saved)
[  4.940000] ballast: modules loaded virtio_net
[  5.000000] ballast: service network started pid=108
[  5.000000] ballast: service network ready
[  5.020000] ballast: service apiserver started pid=111
[  5.300000] ballast: error: something
[  6.570000] ballast: service apiserver ready
[  6.570000] ballast: ready version=0.1.0 variant=qemu slot=a roothash=91b3
[  6.630000] ballast: service console-shell started pid=122
`

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestParse(t *testing.T) {
	tl, err := Parse(console)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := tl.Duration("initramfs", "ready"); err != nil || !near(d, 4.26) {
		t.Errorf("initramfs → ready = %v, %v; want 4.26", d, err)
	}
	if d, err := tl.Service("apiserver"); err != nil || !near(d, 1.55) {
		t.Errorf("apiserver = %v, %v; want 1.55", d, err)
	}
	if _, err := tl.Service("console-shell"); err == nil {
		t.Error("a service that never got ready has a duration")
	}
	// Stages end at the ready line and leave out services and errors.
	var names []string
	for _, s := range tl.Spans {
		if !s.Service {
			names = append(names, s.Name)
		}
	}
	if got := strings.Join(names, ","); got != "modules,partitions,root,data,switch-root,init,random,modules,ready" {
		t.Errorf("stages %s", got)
	}
	if _, err := Parse("[ 1.0] ballast: init x\n"); err == nil {
		t.Error("a console without an initramfs line parsed")
	}
	if _, err := Parse("[ 1.0] ballast: initramfs x\n"); err == nil {
		t.Error("a console without a ready line parsed")
	}
}

func TestSVG(t *testing.T) {
	tl, err := Parse(console)
	if err != nil {
		t.Fatal(err)
	}
	svg := tl.SVG("qemu <boot>")
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, svg)
	}
	for _, want := range []string{"initramfs → ready 4.26 s", "service apiserver", "1.55 s", "qemu &lt;boot&gt;"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}
