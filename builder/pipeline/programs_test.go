package pipeline

import (
	"slices"
	"testing"

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
