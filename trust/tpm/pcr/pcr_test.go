package pcr

import (
	"bytes"
	"crypto/sha256"
	"debug/pe"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/images/uki"
	"github.com/ballast-os/ballast/tests/testutil"
)

func TestExtend(t *testing.T) {
	// sha256(32 zero bytes || sha256("")) computed independently of Extend.
	h := sha256.New()
	h.Write(make([]byte, 32))
	e := sha256.Sum256(nil)
	h.Write(e[:])
	want := hex.EncodeToString(h.Sum(nil))
	if got := ExtendData(Zero, nil).String(); got != want {
		t.Fatalf("ExtendData(Zero, nil) = %s, want %s", got, want)
	}
	if got := Extend(Zero, e).String(); got != want {
		t.Fatalf("Extend(Zero, sha256(\"\")) = %s, want %s", got, want)
	}
}

func TestFromBytes(t *testing.T) {
	for _, tc := range []struct {
		in []byte
		ok bool
	}{{nil, false}, {make([]byte, 31), false}, {make([]byte, 32), true}, {make([]byte, 33), false}} {
		if _, err := FromBytes(tc.in); (err == nil) != tc.ok {
			t.Errorf("FromBytes(%d bytes) error = %v, want ok=%v", len(tc.in), err, tc.ok)
		}
	}
	v := ExtendData(Zero, []byte("x"))
	back, err := ParseHex(v.String())
	if err != nil || back != v {
		t.Fatalf("ParseHex(String()) = %v, %v", back, err)
	}
	if _, err := ParseHex("zz"); err == nil {
		t.Fatal("ParseHex accepted non-hex")
	}
}

func TestPredictUKIRules(t *testing.T) {
	linux := []byte("kernel")
	base := PredictUKI(map[string][]byte{".linux": linux})
	manual := ExtendData(ExtendData(Zero, []byte(".linux\x00")), linux)
	if base != manual {
		t.Fatalf("PredictUKI(.linux) = %s, want name-with-NUL then content: %s", base, manual)
	}
	for name, extra := range map[string]map[string][]byte{
		"pcrsig is not measured":       {".pcrsig": []byte(`{"sha256":[]}`)},
		"empty sections are skipped":   {".initrd": {}},
		"unknown sections are ignored": {".sbat": []byte("sbat,1\n"), ".uname": []byte("6.1")},
	} {
		s := map[string][]byte{".linux": linux}
		for k, v := range extra {
			s[k] = v
		}
		if got := PredictUKI(s); got != base {
			t.Errorf("%s: got %s, want %s", name, got, base)
		}
	}
	// Canonical order, whatever order the map iterates in.
	a := PredictUKI(map[string][]byte{".linux": linux, ".cmdline": []byte("c"), ".osrel": []byte("o")})
	b := ExtendData(ExtendData(base, []byte(".osrel\x00")), []byte("o"))
	b = ExtendData(ExtendData(b, []byte(".cmdline\x00")), []byte("c"))
	if a != b {
		t.Fatalf("order: got %s, want %s", a, b)
	}
}

// systemdMeasure finds the systemd 252 tool that defines what the stub measures; it is not on
// PATH, being a libexec helper.
func systemdMeasure(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/systemd/systemd-measure", "/lib/systemd/systemd-measure"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testutil.Need(t, false, "systemd-measure not found (apt-get install systemd)")
	return ""
}

// measure runs systemd-measure calculate for one phase ("" for the bare UKI value) and returns
// the sha256 PCR 11 value it prints.
func measure(t *testing.T, tool, phase string, files map[string]string) Value {
	t.Helper()
	args := []string{"calculate", "--bank=sha256", "--phase=" + phase}
	for sec, f := range files {
		args = append(args, "--"+strings.TrimPrefix(sec, ".")+"="+f)
	}
	out, err := exec.Command(tool, args...).Output()
	if err != nil {
		t.Fatalf("systemd-measure %v: %v", args, err)
	}
	line := strings.TrimSpace(string(out))
	hexv, ok := strings.CutPrefix(line, "11:sha256=")
	if !ok || strings.Contains(hexv, "\n") {
		t.Fatalf("systemd-measure printed %q, want one 11:sha256= line", out)
	}
	v, err := ParseHex(hexv)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cases are section contents for the cross-checks: sizes off any alignment, binary content with
// NULs, and an empty optional section.
func cases() map[string]map[string][]byte {
	bin := make([]byte, 70001)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	pem := []byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
	return map[string]map[string][]byte{
		"linux only":    {".linux": []byte("MZ kernel")},
		"four":          {".linux": bin, ".osrel": []byte("ID=ballast\nVERSION_ID=1\n"), ".cmdline": []byte("console=ttyS0 ro"), ".initrd": bin[:1234]},
		"with pcrpkey":  {".linux": bin[:999], ".osrel": []byte("ID=ballast\n"), ".cmdline": []byte("quiet"), ".initrd": []byte("cpio\x00\x00"), ".pcrpkey": pem},
		"splash dtb":    {".linux": []byte("k"), ".splash": []byte("BM...."), ".dtb": []byte("\xd0\x0d\xfe\xed"), ".pcrpkey": pem},
		"empty cmdline": {".linux": []byte("k2"), ".cmdline": {}},
	}
}

func writeFiles(t *testing.T, sections map[string][]byte) map[string]string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for sec, data := range sections {
		p := filepath.Join(dir, strings.TrimPrefix(sec, "."))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files[sec] = p
	}
	return files
}

// TestPredictUKIMatchesSystemdMeasure holds the prediction against systemd 252's own: the stub
// and systemd-measure are two halves of one design, and the signed policy is only useful if
// both agree with us to the bit.
func TestPredictUKIMatchesSystemdMeasure(t *testing.T) {
	tool := systemdMeasure(t)
	for name, sections := range cases() {
		t.Run(name, func(t *testing.T) {
			files := writeFiles(t, sections)
			want := measure(t, tool, "", files)
			if got := PredictUKI(sections); got != want {
				t.Fatalf("PredictUKI = %s, systemd-measure = %s", got, want)
			}
			// systemd-measure's boot phases extend the bare value with sha256 of the phase
			// word; Marker must work the same way.
			wantPhase := measure(t, tool, "enter-initrd", files)
			if got := Marker("enter-initrd").After(PredictUKI(sections)); got != wantPhase {
				t.Fatalf("Marker(enter-initrd).After = %s, systemd-measure = %s", got, wantPhase)
			}
		})
	}
}

// TestPredictUKIFile builds real UKIs, with Ballast's own builder and with objcopy the way
// systemd 252's documentation assembles one, and predicts from the PE file. Both lay sections out
// with SizeOfRawData rounded up to the file alignment and VirtualSize the exact content length;
// agreement with systemd-measure on the unpadded files shows the VirtualSize bytes are measured.
func TestPredictUKIFile(t *testing.T) {
	tool := systemdMeasure(t)
	const stubFile = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	stub, err := os.ReadFile(stubFile)
	testutil.Need(t, err == nil, "systemd-stub: %v (apt-get install systemd-boot-efi)", err)
	objcopy := testutil.Tool(t, "objcopy", "binutils")

	for name, sections := range cases() {
		if len(sections[".splash"]) > 0 || len(sections[".dtb"]) > 0 {
			continue // neither builder is asked for these
		}
		want := measure(t, tool, "", writeFiles(t, sections))
		t.Run(name+"/objcopy", func(t *testing.T) {
			files := writeFiles(t, sections)
			out := filepath.Join(t.TempDir(), "uki.efi")
			args := []string{}
			vma := 0x20000000
			for _, sec := range UKISections {
				if len(sections[sec]) == 0 {
					continue
				}
				args = append(args, "--add-section", sec+"="+files[sec],
					"--change-section-vma", fmt.Sprintf("%s=%#x", sec, vma))
				vma += 0x1000000
			}
			testutil.Run(t, objcopy, append(args, stubFile, out)...)
			img, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !checkPadding(t, img) {
				t.Fatal("no section has raw data longer than VirtualSize; the test cannot tell the rules apart")
			}
			got, err := PredictUKIFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("PredictUKIFile = %s, systemd-measure = %s", got, want)
			}
		})
		if len(sections[".pcrpkey"]) > 0 {
			continue // Ballast's builder does not take a .pcrpkey yet
		}
		t.Run(name+"/images-uki", func(t *testing.T) {
			// The builder wants an EFI program as the kernel; the stub itself, with an odd
			// tail so its length is off the file alignment, is one.
			withKernel := map[string][]byte{}
			for k, v := range sections {
				withKernel[k] = v
			}
			withKernel[".linux"] = append(append([]byte(nil), stub...), sections[".linux"][:min(len(sections[".linux"]), 333)]...)
			want := measure(t, tool, "", writeFiles(t, withKernel))
			var buf bytes.Buffer
			err := uki.Build(&buf, stub, uki.Sections{
				Linux: withKernel[".linux"], Initrd: sections[".initrd"],
				Cmdline: string(sections[".cmdline"]), OSRelease: sections[".osrel"],
			})
			if err != nil {
				t.Fatal(err)
			}
			if !checkPadding(t, buf.Bytes()) {
				t.Fatal("no section has raw data longer than VirtualSize; the test cannot tell the rules apart")
			}
			got, err := PredictUKIFile(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("PredictUKIFile = %s, systemd-measure = %s", got, want)
			}
		})
	}
}

// checkPadding reports whether any measured section's raw data is longer than its VirtualSize,
// i.e. whether the image would tell the two rules apart.
func checkPadding(t *testing.T, img []byte) bool {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	padded := false
	for _, s := range f.Sections {
		if measured(s.Name) && s.Size != s.VirtualSize {
			padded = true
		}
	}
	return padded
}

func TestPredictUKIFileBad(t *testing.T) {
	for name, img := range map[string][]byte{
		"empty":   nil,
		"not pe":  []byte("hello world, not a PE file at all"),
		"mz only": append([]byte("MZ"), make([]byte, 62)...),
	} {
		if _, err := PredictUKIFile(img); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMarker(t *testing.T) {
	if LeaveInitrd.Digest() != sha256.Sum256([]byte("ballast: leave-initrd")) {
		t.Fatal("LeaveInitrd digest is not sha256 of the string")
	}
	v := PredictUKI(map[string][]byte{".linux": []byte("k")})
	if got, want := LeaveInitrd.After(v), Extend(v, LeaveInitrd.Digest()); got != want {
		t.Fatalf("After = %s, want %s", got, want)
	}
}
