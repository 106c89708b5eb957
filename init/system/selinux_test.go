package system

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/kmsg"
)

func denial(n int) string {
	return fmt.Sprintf(`audit: type=1400 audit(1717750000.%03d:%d): avc:  denied  { read } for  pid=%d comm="netconf" name="resolv.conf" dev="tmpfs" ino=12 scontext=system_u:system_r:netconf_t:s0 tcontext=system_u:object_r:etc_t:s0 tclass=file permissive=0`, n%1000, n, 100+n)
}

// Denials in the kernel log reach the console, the first ones all, then every 100th, and their
// count is kept for the hardening report.
func TestSELinuxDenials(t *testing.T) {
	tests := []struct {
		name      string
		denials   int
		wantLines int
		wantLast  string
	}{
		{"none", 0, 0, ""},
		{"two", 2, 2, "pid=102 "},
		{"a storm", 250, 101, "selinux: 200 denials so far, only every 100th printed: audit: type=1400 audit(1717750000.200:200)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, _, out := testInit(t)
			mkdirs(t, i, "/run/ballast")
			i.logs = newTestStore(t, i, func() (time.Time, time.Duration) { return time.Unix(1717750000, 0), 10 * time.Second })
			if err := i.logs.Open("b", "v"); err != nil {
				t.Fatal(err)
			}
			src, _ := i.logs.Source(contract.KernelLogSource)
			reads := []string{"5,0,0,-;Linux version 6.1.0-50-cloud-amd64\n", "5,1,1,-;audit: type=1400 avc:  granted  { setenforce }\n"}
			for n := 1; n <= tt.denials; n++ {
				reads = append(reads, fmt.Sprintf("5,%d,%d,-;%s\n", n+1, n, denial(n)))
			}
			f := &fakeKmsg{closed: make(chan struct{}), reads: reads}
			i.writeDenials()
			done := make(chan struct{})
			go func() { i.logKernel(kmsg.NewReader(f), src); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			for {
				b, _ := os.ReadFile(i.path(contract.SELinuxDenials))
				if string(b) == fmt.Sprintf("%d\n", tt.denials) && len(f.pending()) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			f.Close()
			<-done
			if b, err := os.ReadFile(i.path(contract.SELinuxDenials)); err != nil || string(b) != fmt.Sprintf("%d\n", tt.denials) {
				t.Errorf("%s = %q, %v; want %d", contract.SELinuxDenials, b, err, tt.denials)
			}
			var lines []string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "ballast: error: selinux: ") {
					lines = append(lines, l)
				}
			}
			if len(lines) != tt.wantLines {
				t.Fatalf("%d console lines, want %d:\n%s", len(lines), tt.wantLines, out.String())
			}
			if tt.wantLines > 0 && !strings.Contains(lines[len(lines)-1], tt.wantLast) {
				t.Errorf("last line %q, want %q in it", lines[len(lines)-1], tt.wantLast)
			}
			if tt.wantLines > 0 && !strings.HasSuffix(lines[0], "ballast: error: selinux: "+denial(1)) {
				t.Errorf("first line %q", lines[0])
			}
		})
	}
}
