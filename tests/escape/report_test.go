package escape

import (
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/runtime/spec"
)

// report makes a probe report from vector lines, with a matching done line.
func report(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString(doneLine(len(lines)) + "\n")
	return b.String()
}

func TestParseReport(t *testing.T) {
	good := report(
		formatLine(VectorMount, statusBlocked, "mount tmpfs on /tmp/x: EPERM"),
		formatLine(VectorRawSocket, statusAllowed, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) opened (closed)"),
	)
	for _, tc := range []struct {
		name    string
		text    string
		want    map[string]Result
		wantErr string // a part of the error; empty: no error
	}{
		{name: "good", text: good, want: map[string]Result{
			VectorMount:     {Vector: VectorMount, Allowed: false, Detail: "mount tmpfs on /tmp/x: EPERM"},
			VectorRawSocket: {Vector: VectorRawSocket, Allowed: true, Detail: "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) opened (closed)"},
		}},
		{
			// A CRI log puts a timestamp and the stream before each line, and other output around.
			name: "container log",
			text: "2026-01-02T03:04:05Z stdout F starting\n2026-01-02T03:04:05Z stdout F " + formatLine(VectorPtrace, statusBlocked, "PTRACE_SEIZE child pid 7: EPERM") + "\r\n" +
				"2026-01-02T03:04:05Z stdout F " + doneLine(1) + "\n",
			want: map[string]Result{VectorPtrace: {Vector: VectorPtrace, Detail: "PTRACE_SEIZE child pid 7: EPERM"}},
		},
		{name: "empty report", text: doneLine(0), want: map[string]Result{}},
		{name: "error line", text: report(formatLine(VectorSetuid, statusError, "no setuid binary: stat /probe-suid: no such file or directory")), wantErr: "vector setuid: the probe could not check it: no setuid binary"},
		{name: "missing done", text: formatLine(VectorMount, statusBlocked, "EPERM") + "\n", wantErr: "report is incomplete"},
		{name: "done count short", text: formatLine(VectorMount, statusBlocked, "EPERM") + "\n" + formatLine(VectorMknod, statusBlocked, "EPERM") + "\n" + doneLine(1), wantErr: "counts 1 vectors, the report has 2"},
		{name: "unknown vector", text: report(formatLine("teleport", statusAllowed, "beamed up")), wantErr: `unknown vector "teleport"`},
		{name: "duplicated vector", text: report(formatLine(VectorMount, statusBlocked, "EPERM"), formatLine(VectorMount, statusAllowed, "ok")), wantErr: "vector mount reported twice"},
		{name: "bad verdict", text: report(formatLine(VectorMount, "MAYBE", "?")), wantErr: `verdict "MAYBE"`},
		{name: "no verdict", text: report(LinePrefix + VectorMount), wantErr: "without a verdict"},
		{name: "line after done", text: good + formatLine(VectorMknod, statusBlocked, "EPERM") + "\n", wantErr: "after the done line"},
		{name: "two runs", text: good + good, wantErr: "after the done line"},
		{name: "malformed done", text: LinePrefix + "done many\n", wantErr: "malformed done line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReport(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseReport: error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReport: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ParseReport: %d results %v, want %d", len(got), got, len(tc.want))
			}
			for v, w := range tc.want {
				if got[v] != w {
					t.Errorf("%s: %+v, want %+v", v, got[v], w)
				}
			}
		})
	}
}

func TestFormatLineKeepsOneLine(t *testing.T) {
	line := formatLine(VectorMount, statusBlocked, "first\nsecond\t third")
	if want := LinePrefix + "mount BLOCKED first second third"; line != want {
		t.Errorf("formatLine: %q, want %q", line, want)
	}
	if line := formatLine(VectorMount, statusBlocked, ""); !strings.HasSuffix(line, " BLOCKED -") {
		t.Errorf("formatLine with no detail: %q", line)
	}
	res, err := ParseReport(report(formatLine(VectorMount, statusAllowed, "a\nb")))
	if err != nil || res[VectorMount].Detail != "a b" {
		t.Errorf("round trip: %v %v", res, err)
	}
}

func TestVectors(t *testing.T) {
	all := Vectors()
	if len(all) != 21 {
		t.Errorf("%d vectors, want 21", len(all))
	}
	seen := map[string]bool{}
	for _, v := range all {
		if seen[v] {
			t.Errorf("vector %s listed twice", v)
		}
		seen[v] = true
		if v == "done" || strings.ContainsAny(v, " \t") {
			t.Errorf("vector name %q would break the report's lines", v)
		}
	}
	for _, v := range PrivilegedVectors() {
		if !seen[v] {
			t.Errorf("privileged vector %s is not a vector", v)
		}
	}
	for _, v := range AlwaysBlocked() {
		if !seen[v] {
			t.Errorf("always blocked vector %s is not a vector", v)
		}
		if slices.Contains(PrivilegedVectors(), v) {
			t.Errorf("%s is both privileged and always blocked", v)
		}
	}
	// Limits hold for superpowered containers too, and a leaked descriptor is a bug in any.
	for _, v := range []string{VectorMemoryExhaust, VectorPidsExhaust, VectorLeakedFD} {
		if slices.Contains(PrivilegedVectors(), v) {
			t.Errorf("%s must not be a privileged vector", v)
		}
	}
}

// The probe keeps its own copy of the paths a superpowered container gets; they must be the
// runtime's.
func TestPathsMatchTheRuntime(t *testing.T) {
	if HostRootfs != spec.HostRootfs {
		t.Errorf("HostRootfs %q, the runtime's %q", HostRootfs, spec.HostRootfs)
	}
	if contract.APISocket != spec.APISocket {
		t.Errorf("contract.APISocket %q, the runtime mounts %q", contract.APISocket, spec.APISocket)
	}
}
