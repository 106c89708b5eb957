package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
)

func TestUserDataSources(t *testing.T) {
	base := sourceConfig{RunDir: "/run", Wait: time.Second, IMDSTimeout: 2 * time.Second, Cmdline: "/proc/cmdline"}
	nocloud := userdata.NamedSource{Name: "nocloud", Source: userdata.NoCloud{RunDir: "/run", Wait: time.Second}}
	ovf := userdata.NamedSource{Name: "ovf", Source: userdata.OVF{RunDir: "/run", Wait: time.Second}}
	imds := userdata.NamedSource{Name: "imds", Source: userdata.IMDS{Endpoint: userdata.IMDSEndpoint, Timeout: 2 * time.Second}}
	cmdline := userdata.NamedSource{Name: "cmdline", Source: userdata.Cmdline{Path: "/proc/cmdline"}}
	file := userdata.NamedSource{Name: "file", Source: userdata.File("/tmp/ud")}
	with := func(f func(*sourceConfig)) sourceConfig { c := base; f(&c); return c }
	tests := []struct {
		name    string
		cfg     sourceConfig
		want    []userdata.NamedSource
		wantErr string
	}{
		{"default off EC2", base, []userdata.NamedSource{nocloud, ovf, cmdline}, ""},
		{"default on EC2", with(func(c *sourceConfig) { c.IMDS = userdata.IMDSEndpoint }), []userdata.NamedSource{nocloud, ovf, imds, cmdline}, ""},
		{"image's order", with(func(c *sourceConfig) {
			c.Names = []string{"cmdline", "ovf", "nocloud"}
			c.IMDS = userdata.IMDSEndpoint
		}), []userdata.NamedSource{cmdline, ovf, nocloud}, ""},
		{"listed imds off EC2", with(func(c *sourceConfig) { c.Names = []string{"imds", "cmdline"} }), []userdata.NamedSource{cmdline}, ""},
		{"listed imds on EC2", with(func(c *sourceConfig) {
			c.Names = []string{"imds", "nocloud"}
			c.IMDS = userdata.IMDSEndpoint
		}), []userdata.NamedSource{imds, nocloud}, ""},
		{"file replaces the default's first", with(func(c *sourceConfig) { c.File = "/tmp/ud" }), []userdata.NamedSource{file, ovf, cmdline}, ""},
		{"file replaces the image's first", with(func(c *sourceConfig) {
			c.Names = []string{"ovf", "cmdline"}
			c.File = "/tmp/ud"
		}), []userdata.NamedSource{file, cmdline}, ""},
		{"file alone", with(func(c *sourceConfig) {
			c.Names = []string{"imds"}
			c.File = "/tmp/ud"
		}), []userdata.NamedSource{file}, ""},
		{"unknown and repeated names", with(func(c *sourceConfig) { c.Names = []string{"ovf", "azure", "ovf", "cmdline"} }),
			[]userdata.NamedSource{ovf, cmdline}, `user data sources: unknown source "azure" (known: nocloud, ovf, imds, cmdline); "ovf" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := userDataSources(tt.cfg)
			if (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			// Functions compare only when nil: the table's sources have no BeforeMount.
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sources\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// The default is the contract's list, so a source added there is not forgotten here.
func TestUserDataSourcesDefaultCoversContract(t *testing.T) {
	got, err := userDataSources(sourceConfig{IMDS: "http://192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if names := sourceNames(got); !reflect.DeepEqual(names, contract.UserDataSources()) {
		t.Errorf("default sources %q, want %q", names, contract.UserDataSources())
	}
}

func TestIMDSEndpoint(t *testing.T) {
	for _, tc := range []struct {
		flag string
		ec2  bool
		want string
	}{
		{"auto", true, userdata.IMDSEndpoint},
		{"auto", false, ""},
		{"off", true, ""},
		{"", true, ""},
		{"http://127.0.0.1:9", false, "http://127.0.0.1:9"},
	} {
		if got := imdsEndpoint(tc.flag, func() bool { return tc.ec2 }); got != tc.want {
			t.Errorf("imdsEndpoint(%q, EC2 %v) = %q, want %q", tc.flag, tc.ec2, got, tc.want)
		}
	}
}

func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	img, err := readImage(filepath.Join(dir, "missing.json"))
	if err != nil || img.UserDataSources != nil || !reflect.DeepEqual(img.Updates, contract.DefaultUpdatePolicy()) {
		t.Errorf("missing image.json: %+v, %v", img, err)
	}
	img, err = readImage(write("listed.json", `{"variant":"vmware","userdata_sources":["ovf","cmdline"]}`))
	if err != nil || !reflect.DeepEqual(img.UserDataSources, []string{"ovf", "cmdline"}) {
		t.Errorf("listed: %+v, %v", img, err)
	}
	bad := write("bad.json", `{"userdata_sources":"ovf"}`)
	img, err = readImage(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || img.UserDataSources != nil || !reflect.DeepEqual(img.Updates, contract.DefaultUpdatePolicy()) {
		t.Errorf("bad image.json: %+v, %v", img, err)
	}
}
