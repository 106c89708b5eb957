package format

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ballast-os/ballast/contract"
)

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestAMIJSON checks ami.json field by field against the names of EC2's ImportSnapshot and
// RegisterImage requests (the AWS API reference spells them so, and the CLI's --cli-input-json
// takes nothing else).
func TestAMIJSON(t *testing.T) {
	raw := makeDisk(t, 3*mib, testPatches(3*mib))
	out := filepath.Join(t.TempDir(), "ami.json")
	opts := Options{Name: "ballast-aws", Version: "0.1.0+g1a2b", Description: "Ballast <aws> & EC2", Arch: "amd64"}
	if err := Convert(context.Background(), raw, out, AMI, opts); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Ballast <aws> & EC2"`) || !strings.HasSuffix(string(b), "}\n") {
		t.Errorf("ami.json:\n%s", b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	is, ri := doc["import_snapshot"].(map[string]any), doc["register_image"].(map[string]any)
	dc := is["DiskContainer"].(map[string]any)
	bdm := ri["BlockDeviceMappings"].([]any)
	for _, c := range []struct {
		what string
		got  []string
		want []string
	}{
		{"top", keys(t, doc), []string{"import_snapshot", "register_image"}},
		{"import_snapshot", keys(t, is), []string{"Description", "DiskContainer"}},
		{"DiskContainer", keys(t, dc), []string{"Description", "Format", "UserBucket"}},
		{"UserBucket", keys(t, dc["UserBucket"]), []string{"S3Key"}},
		{"register_image", keys(t, ri), []string{"Architecture", "BlockDeviceMappings", "BootMode", "Description", "EnaSupport", "ImdsSupport", "Name", "RootDeviceName", "SriovNetSupport", "TpmSupport", "VirtualizationType"}},
		{"BlockDeviceMapping", keys(t, bdm[0]), []string{"DeviceName", "Ebs"}},
		{"Ebs", keys(t, bdm[0].(map[string]any)["Ebs"]), []string{"DeleteOnTermination", "VolumeSize", "VolumeType"}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s keys %q, want %q", c.what, c.got, c.want)
		}
	}
	want := map[string]any{
		"Name": "ballast-aws-0.1.0-g1a2b", "Description": "Ballast <aws> & EC2", "Architecture": "x86_64",
		"BootMode": "uefi", "EnaSupport": true, "SriovNetSupport": "simple", "VirtualizationType": "hvm",
		"RootDeviceName": "/dev/xvda", "ImdsSupport": "v2.0", "TpmSupport": "v2.0",
	}
	for k, v := range want {
		if ri[k] != v {
			t.Errorf("register_image %s = %v, want %v", k, ri[k], v)
		}
	}
	if dc["Format"] != "VMDK" || dc["UserBucket"].(map[string]any)["S3Key"] != "disk.vmdk" {
		t.Errorf("DiskContainer %v", dc)
	}
	ebs := bdm[0].(map[string]any)["Ebs"].(map[string]any)
	if bdm[0].(map[string]any)["DeviceName"] != "/dev/xvda" || ebs["VolumeSize"] != 1.0 || ebs["VolumeType"] != "gp3" || ebs["DeleteOnTermination"] != true {
		t.Errorf("block device mapping %v", bdm[0])
	}
}

func TestNewAMIDescription(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name     string
		size     int64
		opts     Options
		wantSize int64
		wantArch string
		wantName string
		wantErr  string
	}{
		{name: "one sector", size: 512, opts: Options{Name: "ballast-aws"}, wantSize: 1, wantArch: "x86_64", wantName: "ballast-aws"},
		{name: "exactly 2 GiB", size: 2 * gib, opts: Options{Name: "ballast-aws", Arch: "amd64"}, wantSize: 2, wantArch: "x86_64", wantName: "ballast-aws"},
		{name: "a sector past 2 GiB", size: 2*gib + 512, opts: Options{Name: "ballast-aws", Version: "1.2"}, wantSize: 3, wantArch: "x86_64", wantName: "ballast-aws-1.2"},
		{name: "arm64", size: gib, opts: Options{Name: "ballast-aws", Arch: "arm64"}, wantSize: 1, wantArch: "arm64", wantName: "ballast-aws"},
		{name: "riscv64", size: gib, opts: Options{Name: "ballast-aws", Arch: "riscv64"}, wantErr: `architecture "riscv64"`},
		{name: "short name", size: gib, opts: Options{Name: "b"}, wantErr: `name "b"`},
		{name: "long description", size: gib, opts: Options{Name: "ballast-aws", Description: strings.Repeat("d", 256)}, wantErr: "description of 256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewAMIDescription(tc.size, "disk.vmdk", tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ri := d.RegisterImage
			if got := ri.BlockDeviceMappings[0].Ebs.VolumeSize; got != tc.wantSize || ri.Architecture != tc.wantArch || ri.Name != tc.wantName {
				t.Errorf("volume %d GiB, arch %s, name %s; want %d, %s, %s", got, ri.Architecture, ri.Name, tc.wantSize, tc.wantArch, tc.wantName)
			}
		})
	}
}

// ami.json of an arm64 disk asks EC2 for an arm64 image, in EC2's spelling; the OVA, whose
// descriptor is an x86-64 vSphere guest, refuses the disk rather than describe it wrongly.
func TestConvertArm64(t *testing.T) {
	raw := makeDisk(t, 3*mib, testPatches(3*mib))
	dir := t.TempDir()
	out := filepath.Join(dir, "ami.json")
	if err := Convert(context.Background(), raw, out, AMI, Options{Name: "ballast-aws", Arch: contract.ARM64}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		RegisterImage struct{ Architecture string } `json:"register_image"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.RegisterImage.Architecture != "arm64" {
		t.Errorf("register_image.Architecture = %q, want arm64:\n%s", doc.RegisterImage.Architecture, b)
	}
	ova := filepath.Join(dir, "disk.ova")
	err = Convert(context.Background(), raw, ova, OVA, Options{Name: "ballast-vmware", Arch: contract.ARM64})
	if err == nil || !strings.Contains(err.Error(), `architecture "arm64"`) {
		t.Errorf("OVA of an arm64 disk: %v, want it refused", err)
	}
	if _, serr := os.Stat(ova); serr == nil {
		t.Error("the refused OVA was left behind")
	}
}

func TestFileNameAndRequires(t *testing.T) {
	for f, want := range map[Format]string{Raw: "disk.raw", VMDK: "disk.vmdk", GCE: "disk.tar.gz", OVA: "disk.ova", AMI: "ami.json"} {
		if got := FileName(f); got != want {
			t.Errorf("FileName(%s) = %q, want %q", f, got, want)
		}
	}
	for _, f := range Formats() {
		want := []Format(nil)
		if f == AMI {
			want = []Format{VMDK}
		}
		if got := Requires(f); !reflect.DeepEqual(got, want) {
			t.Errorf("Requires(%s) = %v, want %v", f, got, want)
		}
	}
}
