package pipeline

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/images/format"
)

func TestOutputFormats(t *testing.T) {
	for _, tc := range []struct {
		names   []string
		want    []format.Format
		wantErr string
	}{
		{[]string{"raw", "qcow2"}, []format.Format{format.Raw, format.QCOW2}, ""},
		// ami describes disk.vmdk: vmdk comes first, once.
		{[]string{"raw", "ami"}, []format.Format{format.Raw, format.VMDK, format.AMI}, ""},
		{[]string{"raw", "ami", "vmdk"}, []format.Format{format.Raw, format.VMDK, format.AMI}, ""},
		{[]string{"vmdk", "ova", "ami"}, []format.Format{format.VMDK, format.OVA, format.AMI}, ""},
		{[]string{"raw", "raw"}, []format.Format{format.Raw}, ""},
		// The installer's formats are writeInstaller's, not conversions.
		{[]string{"raw", "iso", "netboot"}, []format.Format{format.Raw}, ""},
		{[]string{"raw", "isox"}, nil, `--format: unknown disk format "isox"`},
	} {
		got, err := outputFormats(tc.names)
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("outputFormats(%q): error %v, want %q", tc.names, err, tc.wantErr)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("outputFormats(%q) = %v, want %v", tc.names, got, tc.want)
		}
	}
}

func TestFormatOptions(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	got := formatOptions("vmware", contract.AMD64, "0.2.0", "Ballast for vSphere", 0, hash)
	want := format.Options{
		Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), UUID: contract.DerivedUUID("disk-format-uuid", hash),
		Name: "ballast-vmware", Version: "0.2.0", Description: "Ballast for vSphere", Arch: "amd64",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("formatOptions = %+v\nwant %+v", got, want)
	}
	if later := formatOptions("vmware", contract.AMD64, "0.2.0", "", 1700000000, hash); !later.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("time %v, want the build's epoch", later.Time)
	}
}
