package sbom

import (
	"strings"
	"testing"
)

func TestIDPart(t *testing.T) {
	cases := map[string]string{
		"busybox-static":                "busybox-static",
		"/usr/bin/apiserver":            "usr-bin-apiserver",
		"github.com/BurntSushi/toml@v1": "github.com-BurntSushi-toml-v1",
		"1:1.35.0-4+deb12u1+b1":         "1-1.35.0-4-deb12u1-b1",
		"a//b__c":                       "a-b-c",
		"ünïcode":                       "n-code",
		"///":                           "x",
	}
	for in, want := range cases {
		got := idPart(in)
		if got != want {
			t.Errorf("idPart(%q) = %q, want %q", in, got, want)
		}
		if !validSPDXID("SPDXRef-" + got) {
			t.Errorf("idPart(%q) = %q does not make a valid SPDXID", in, got)
		}
	}
}

func TestPurls(t *testing.T) {
	cases := []struct{ got, want string }{
		{goPurl("github.com/BurntSushi/toml", "v1.6.0"), "pkg:golang/github.com/BurntSushi/toml@v1.6.0"},
		{goPurl("golang.org/x/sys", "v0.50.0"), "pkg:golang/golang.org/x/sys@v0.50.0"},
		{goPurl("github.com/u-root/uio", "v0.0.0-20240224005618-d2acac8f3701"), "pkg:golang/github.com/u-root/uio@v0.0.0-20240224005618-d2acac8f3701"},
		{goPurl("example.com/devel", ""), "pkg:golang/example.com/devel"},
		{goPurl("example.com/m", "v1.0.0+incompatible"), "pkg:golang/example.com/m@v1.0.0%2Bincompatible"},
		{debPurl("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64"), "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bdeb12u1%2Bb1?arch=amd64"},
		{debPurl("systemd-boot-efi", "252.39-1~deb12u2", "amd64"), "pkg:deb/debian/systemd-boot-efi@252.39-1~deb12u2?arch=amd64"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("purl %q, want %q", c.got, c.want)
		}
	}
}

func TestDebArch(t *testing.T) {
	cases := []struct{ file, arch, err string }{
		{"pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb", "amd64", ""},
		{"pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb", "all", ""},
		{"pool/main/x/x/x.deb", "", "not <name>_<version>_<arch>.deb"},
		{"pool/main/x/x/x_1_amd64.udeb", "", "not <name>_<version>_<arch>.deb"},
		{"x_1_.deb", "", "not <name>_<version>_<arch>.deb"},
	}
	for _, c := range cases {
		arch, err := debArch(c.file)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.file) {
				t.Errorf("debArch(%q): %v, want error %q naming the file", c.file, err, c.err)
			}
			continue
		}
		if err != nil || arch != c.arch {
			t.Errorf("debArch(%q) = %q, %v, want %q", c.file, arch, err, c.arch)
		}
	}
}

func TestCheckExpression(t *testing.T) {
	cases := map[string]string{
		"MIT":                                    "",
		"GPL-2.0-or-later OR MIT":                "",
		"(GPL-2.0+ OR BSD-3-Clause) AND MPL-2.0": "",
		"GPL-3.0-or-later WITH Autoconf-exception-3.0": "",
		"LicenseRef-public-domain":                     "",
		"":                                             "empty",
		"MIT OR":                                       "incomplete",
		"OR MIT":                                       "unexpected OR",
		"MIT BSD-3-Clause":                             "missing operator",
		"(MIT":                                         "incomplete",
		"MIT)":                                         "unexpected )",
		"GPL-2+ with exception":                        "missing operator",
		"MIT/X11":                                      "not a license identifier",
	}
	for expr, want := range cases {
		err := checkExpression(expr)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("checkExpression(%q) = %v, want %q", expr, err, want)
		}
	}
}
