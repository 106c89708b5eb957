package pipeline

import (
	"slices"
	"testing"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/packages/gocomponents"
)

func TestInstalled(t *testing.T) {
	bins := []gocomponents.Binary{{Name: "containerd"}, {Name: "ctr", DevOnly: true}, {Name: "shim"}}
	names := func(bs []gocomponents.Binary) []string {
		var n []string
		for _, b := range bs {
			n = append(n, b.Name)
		}
		return n
	}
	for _, tt := range []struct {
		dev  bool
		want []string
	}{{true, []string{"containerd", "ctr", "shim"}}, {false, []string{"containerd", "shim"}}} {
		if got := names(installed(bins, tt.dev)); !slices.Equal(got, tt.want) {
			t.Errorf("dev=%v: installed %v, want %v", tt.dev, got, tt.want)
		}
	}
}

func TestInstalledSkipsTestOnly(t *testing.T) {
	bins := []gocomponents.Binary{{Name: "kubelet"}, {Name: "kube-apiserver", TestOnly: true}}
	for _, dev := range []bool{true, false} {
		got := installed(bins, dev)
		if len(got) != 1 || got[0].Name != "kubelet" {
			t.Errorf("dev=%v: installed %v, want only kubelet", dev, got)
		}
	}
}

func TestCheckComponents(t *testing.T) {
	containerd := gocomponents.Component{Name: "containerd", Binaries: []gocomponents.BinarySpec{
		{Name: "containerd", Install: "/usr/bin/containerd"}, {Name: "ctr", Install: "/usr/bin/ctr", DevOnly: true}}}
	cri := containerd
	cri.Name = "containerd-cri"
	k8s := gocomponents.Component{Name: "kubernetes", Binaries: []gocomponents.BinarySpec{
		{Name: "kubelet", Install: contract.KubeletPath}, {Name: "kube-apiserver", TestOnly: true}}}
	// Test-only binaries have no install path: two of them never collide.
	etcd := gocomponents.Component{Name: "etcd", TestOnly: true, Binaries: []gocomponents.BinarySpec{{Name: "etcd"}}}
	prog := contract.Program{Name: "containerd", Component: "containerd", Path: "/usr/bin/containerd"}
	for _, tt := range []struct {
		name  string
		comps []gocomponents.Component
		want  string // "" for success
	}{
		{"its own component", []gocomponents.Component{containerd}, ""},
		{"another component installing the path", []gocomponents.Component{cri, k8s, etcd}, ""},
		{"both containerds", []gocomponents.Component{containerd, k8s, cri},
			"variant v/k8s.toml: packages.go: components containerd/containerd and containerd-cri/containerd both install /usr/bin/containerd: list one of them"},
		{"nothing installs it", []gocomponents.Component{k8s, etcd},
			"variant v/k8s.toml: program containerd: no component in packages.go installs /usr/bin/containerd (containerd does)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkComponents("v/k8s.toml", []contract.Program{prog}, tt.comps)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}
