package userdata

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const vsphereUserData = "[settings]\nmotd = \"from vsphere\"\n"

// ovfEnv is an OVF environment with the given PropertySection content, laid out as vSphere
// writes it.
func ovfEnv(props string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id="" ve:vCenterId="vm-7">
   <PlatformSection><Kind>VMware ESXi</Kind><Version>7.0.3</Version><Vendor>VMware, Inc.</Vendor><Locale>en</Locale></PlatformSection>
   <PropertySection>
` + props + `
   </PropertySection>
   <ve:EthernetAdapterSection>
      <ve:Adapter ve:mac="00:50:56:00:00:01" ve:network="VM Network" ve:unitNumber="7"/>
   </ve:EthernetAdapterSection>
</Environment>
`
}

func prop(key, value string) string {
	return fmt.Sprintf(`<Property oe:key=%q oe:value=%q/>`, key, value)
}

func TestOVFUserData(t *testing.T) {
	sample, err := os.ReadFile("testdata/ovf-env-vsphere.xml")
	if err != nil {
		t.Fatal(err)
	}
	ud := "[settings]\nmotd = \"hello ovf\"\n"
	std := base64.StdEncoding.EncodeToString([]byte(ud))
	binary := []byte{0xfb, 0xff, 0xfe, 0x00, 0x01} // URL-safe base64 differs from the standard one
	var wrapped strings.Builder
	for s := std; s != ""; s = s[min(len(s), 8):] {
		wrapped.WriteString(s[:min(len(s), 8)] + "\n")
	}
	tests := []struct {
		name     string
		env      string
		want     string
		notFound bool
		wantErr  string
	}{
		{name: "vsphere sample", env: string(sample), want: vsphereUserData},
		{name: "padded", env: ovfEnv(prop("hostname", "h") + prop("user-data", std)), want: ud},
		{name: "unpadded", env: ovfEnv(prop("user-data", strings.TrimRight(std, "="))), want: ud},
		{name: "wrapped", env: ovfEnv(`<Property oe:key="user-data" oe:value="` + wrapped.String() + `"/>`), want: ud},
		{name: "url-safe", env: ovfEnv(prop("user-data", base64.RawURLEncoding.EncodeToString(binary))), want: string(binary)},
		{name: "other prefix for the namespace", env: `<e:Environment xmlns:e="http://schemas.dmtf.org/ovf/environment/1"><e:PropertySection><e:Property e:key="user-data" e:value="` + std + `"/></e:PropertySection></e:Environment>`, want: ud},
		{name: "empty, the OVA's default", env: ovfEnv(prop("user-data", "")), notFound: true},
		{name: "blank", env: ovfEnv(prop("user-data", "  ")), notFound: true},
		{name: "no user-data property", env: ovfEnv(prop("hostname", "h")), notFound: true},
		{name: "no property section", env: `<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"/>`, notFound: true},
		// A vApp's environment lists the other members' properties in Entity elements.
		{name: "another entity's", env: ovfEnv(prop("hostname", "h") + `</PropertySection><Entity oe:id="db"><PropertySection>` + prop("user-data", std) + `</PropertySection></Entity><PropertySection>`), notFound: true},
		{name: "guestinfo key is not ours", env: ovfEnv(prop("guestinfo.userdata", std)), notFound: true},
		{name: "malformed", env: ovfEnv(prop("user-data", std))[:200], wantErr: "ovf-env.xml: not well-formed XML"},
		{name: "mismatched tags", env: `<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"><PropertySection></Environment>`, wantErr: "ovf-env.xml: not well-formed XML"},
		{name: "not xml", env: "user-data=abc", wantErr: "ovf-env.xml: not well-formed XML"},
		{name: "empty file", env: "", wantErr: "ovf-env.xml: not well-formed XML"},
		{name: "an OVF descriptor", env: `<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>`, wantErr: "ovf-env.xml: not an OVF environment"},
		{name: "no namespace", env: `<Environment><PropertySection>` + prop("user-data", std) + `</PropertySection></Environment>`, wantErr: "ovf-env.xml: not an OVF environment"},
		{name: "unqualified key", env: ovfEnv(`<Property key="user-data" value="` + std + `"/>`), wantErr: "ovf-env.xml: PropertySection: property 1 has no oe:key"},
		{name: "no value", env: ovfEnv(`<Property oe:key="user-data"/>`), wantErr: "ovf-env.xml: property user-data has no oe:value"},
		{name: "twice", env: ovfEnv(prop("user-data", std) + prop("user-data", std)), wantErr: "ovf-env.xml: property user-data given twice"},
		{name: "not base64", env: ovfEnv(prop("user-data", "[settings]")), wantErr: "ovf-env.xml: property user-data is not base64"},
		{name: "junk after the root", env: ovfEnv(prop("user-data", std)) + "<more/>", wantErr: "ovf-env.xml: content after the Environment element"},
		{name: "text after the root", env: ovfEnv(prop("user-data", std)) + "x", wantErr: "ovf-env.xml: text after the Environment element"},
		{name: "too much base64", env: ovfEnv(prop("user-data", strings.Repeat("QUFB", maxRaw/3+2))), wantErr: "ovf-env.xml: property user-data is larger than"},
		{name: "too large a document", env: ovfEnv(strings.Repeat("<!-- padding -->", maxOVFEnv/16)), wantErr: "ovf-env.xml: larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := ovfUserData([]byte(tt.env))
			switch {
			case tt.notFound:
				if !errors.Is(err, ErrNotFound) || data != nil {
					t.Fatalf("ovfUserData = %q, %v; want ErrNotFound", data, err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || errors.Is(err, ErrNotFound) {
					t.Fatalf("ovfUserData = %q, %v; want an error starting %q", data, err, tt.wantErr)
				}
			default:
				if err != nil || string(data) != tt.want {
					t.Fatalf("ovfUserData = %q, %v; want %q", data, err, tt.want)
				}
			}
		})
	}
}

// The largest user data a source may return fits in the property, and the property in the
// document.
func TestOVFUserDataLargest(t *testing.T) {
	ud := make([]byte, maxRaw)
	for i := range ud {
		ud[i] = byte(i)
	}
	data, err := ovfUserData([]byte(ovfEnv(prop("user-data", base64.StdEncoding.EncodeToString(ud)))))
	if err != nil || string(data) != string(ud) {
		t.Fatalf("ovfUserData of %d bytes: %d bytes, %v", len(ud), len(data), err)
	}
	data, err = ovfUserData([]byte(ovfEnv(prop("user-data", base64.StdEncoding.EncodeToString(append(ud, 1))))))
	if err == nil || !strings.Contains(err.Error(), "decodes to more than") {
		t.Fatalf("ovfUserData of %d bytes: %d bytes, %v", len(ud)+1, len(data), err)
	}
}

// ovfISO makes an ISO9660 image labelled label holding files, with tool and its options.
func ovfISO(t *testing.T, tool, label string, files map[string]string, opts ...string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "env.iso")
	args := append([]string{"-quiet", "-o", img, "-V", label}, opts...)
	args = append(args, dir)
	if tool == "xorriso" {
		args = append([]string{"-as", "mkisofs"}, args...)
	}
	run(t, tool, args...)
	return img
}

func TestISORootFiles(t *testing.T) {
	files := map[string]string{"ovf-env.xml": "<x/>", "readme": "r", "a.b.c": "x"}
	for _, tc := range []struct {
		tool string
		opts []string
		want []string
	}{
		{"genisoimage", []string{"-J", "-r"}, []string{"A_B.C;1", "OVF_ENV.XML;1", "README.;1"}},
		{"genisoimage", nil, []string{"A_B.C;1", "OVF_ENV.XML;1", "README.;1"}},
		{"xorriso", []string{"-J", "-r"}, []string{"A_B.C;1", "OVF_ENV.XML;1", "README.;1"}},
	} {
		t.Run(tc.tool+strings.Join(tc.opts, ""), func(t *testing.T) {
			img := ovfISO(t, tc.tool, "OVF ENV", files, tc.opts...)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			names, err := isoRootFiles(f)
			if err != nil || strings.Join(names, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("isoRootFiles = %q, %v; want %q", names, err, tc.want)
			}
			if !hasOVFEnv(names) {
				t.Errorf("hasOVFEnv(%q) = false", names)
			}
		})
	}
}

func TestHasOVFEnv(t *testing.T) {
	for names, want := range map[string]bool{
		"OVF_ENV.XML;1":         true,
		"OVF-ENV.XML;1":         true, // mkisofs -relaxed-filenames
		"ovf-env.xml":           true, // no version
		"README.;1,OVF_ENV.XML": true,
		"OVF_ENV.XM;1":          false,
		"OVF_ENV.XML.GZ;1":      false,
		"USER_DAT.;1":           false,
		"":                      false,
	} {
		if got := hasOVFEnv(strings.Split(names, ",")); got != want {
			t.Errorf("hasOVFEnv(%q) = %v, want %v", names, got, want)
		}
	}
}

// Bad directory records are errors, not panics or reads past the directory.
func TestISORootFilesCorrupt(t *testing.T) {
	img := ovfISO(t, "genisoimage", "OVF ENV", map[string]string{"ovf-env.xml": "<x/>"})
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	var pvd [190]byte
	if _, err := f.ReadAt(pvd[:], isoPVDOffset); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rootOff := int64(pvd[isoRootRecOff+isoRecExtent]) | int64(pvd[isoRootRecOff+isoRecExtent+1])<<8 | int64(pvd[isoRootRecOff+isoRecExtent+2])<<16
	rootOff *= 2048
	for _, tc := range []struct {
		name string
		off  int64
		b    []byte
		want string
	}{
		{"record shorter than its header", rootOff, []byte{10}, "bad record of 10 bytes"},
		{"name overruns", rootOff + isoRecNameLen, []byte{200}, "name of 200 bytes overruns"},
		{"block size", isoPVDOffset + isoBlockSizeOff, []byte{0x34, 0x12}, "logical block size 4660"},
		{"root beyond the device", isoPVDOffset + isoRootRecOff + isoRecExtent, []byte{0xff, 0xff, 0xff, 0x0f}, "root directory at offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.iso")
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bad, b, 0o600); err != nil {
				t.Fatal(err)
			}
			patch(t, bad, tc.off, tc.b)
			f, err := os.Open(bad)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if names, err := isoRootFiles(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("isoRootFiles = %q, %v; want %q", names, err, tc.want)
			}
		})
	}
}

func TestOVFFind(t *testing.T) {
	env := map[string]string{"ovf-env.xml": ovfEnv(prop("user-data", "eA"))}
	vsphere := ovfISO(t, "xorriso", "OVF ENV", env, "-J", "-r")
	unlabelled := ovfISO(t, "genisoimage", "CDROM", env)
	labelOnly := ovfISO(t, "genisoimage", "OVF ENV", map[string]string{"user-data": "x"}, "-J", "-r")
	cidata := isoImage(t, "genisoimage", "cidata", "[settings]\n")
	fat := fatImage(t, 2, "", "-F", "12", "-n", "OVF ENV")
	tests := []struct {
		name string
		devs []fakeDev
		want string // device name; "" for none
	}{
		{"vsphere", []fakeDev{{name: "sda", image: fat}, {name: "sr0", image: vsphere}}, "sr0"},
		{"any label", []fakeDev{{name: "sr1", image: unlabelled}}, "sr1"},
		{"the label is not enough", []fakeDev{{name: "sr0", image: labelOnly}, {name: "sr1", image: cidata}, {name: "vda", image: fat}}, ""},
		{"first with the file", []fakeDev{{name: "sr0", image: labelOnly}, {name: "sr1", image: vsphere}, {name: "sr2", image: unlabelled}}, "sr1"},
		{"no devices", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sysBlock, devDir := fakeBlock(t, tt.devs)
			got, err := OVF{SysBlock: sysBlock, DevDir: devDir}.Find(context.Background())
			if tt.want == "" {
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "ovf-env.xml") {
					t.Fatalf("Find = %+v, %v; want ErrNotFound naming ovf-env.xml", got, err)
				}
				_, origin, err := OVF{SysBlock: sysBlock, DevDir: devDir}.Fetch(context.Background())
				if !errors.Is(err, ErrNotFound) || origin != OVFEnvFile {
					t.Fatalf("Fetch = %q, %v; want ErrNotFound", origin, err)
				}
				return
			}
			if want := (Device{filepath.Join(devDir, tt.want), FSISO9660}); err != nil || got != want {
				t.Fatalf("Find = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

// readOVFEnv takes the file by either name isofs may show it by, and bounds it.
func TestReadOVFEnv(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		wantErr       string
		notFound      bool
	}{
		{name: "ovf-env.xml", content: "<a/>"},
		{name: "ovf_env.xml", content: "<b/>"},
		{name: "OVF_ENV.XML", notFound: true},
		{name: "ovf-env.xml", content: strings.Repeat("x", maxOVFEnv+1), wantErr: "larger than"},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tc.name), []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := readOVFEnv(dir, "/dev/sr9")
		switch {
		case tc.notFound:
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/dev/sr9 has no ovf-env.xml") {
				t.Errorf("%s: readOVFEnv = %v, want ErrNotFound", tc.name, err)
			}
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: readOVFEnv = %v, want %q", tc.name, err, tc.wantErr)
			}
		case err != nil || string(b) != tc.content:
			t.Errorf("%s: readOVFEnv = %q, %v", tc.name, b, err)
		}
	}
}
