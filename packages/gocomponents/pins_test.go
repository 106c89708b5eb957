package gocomponents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodPin = `
[[component]]
name = "runc"
module = "github.com/opencontainers/runc"
version = "v1.5.2"
sum = "h1:eUUowc2WJCnFYzI87C1WqRcu356Dk/wsoi90y+2wEfE="
cgo = true
tags = ["seccomp"]
pkg_config = ["libseccomp"]

[[component.binary]]
name = "runc"
package = "."
install = "/usr/sbin/runc"
`

func writePin(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "go-components.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // substring of the error; "" means success
	}{
		{"good", goodPin, ""},
		{"unknown top-level key", "flavour = 1\n" + goodPin, `unknown key "flavour"`},
		{"unknown component key", strings.Replace(goodPin, "cgo = true", "cgo = true\ncgo_flags = []", 1), `unknown key "component.cgo_flags"`},
		{"unknown binary key", goodPin + "ldflags = \"-X a.b=c\"\n", `unknown key "component.binary.ldflags"`},
		{"toml syntax", goodPin + "[[component\n", "go-components.toml"},
		{"no components", "# nothing\n", "no [[component]]"},
		{"missing name", strings.Replace(goodPin, `name = "runc"`+"\nmodule", "module", 1), `component #1 (): name ""`},
		{"missing module", strings.Replace(goodPin, `module = "github.com/opencontainers/runc"`, "", 1), `module ""`},
		{"missing version", strings.Replace(goodPin, `version = "v1.5.2"`, "", 1), `version ""`},
		{"branch not version", strings.Replace(goodPin, `"v1.5.2"`, `"main"`, 1), `version "main" is not an exact`},
		{"missing sum", strings.Replace(goodPin, `sum = "h1:eUUowc2WJCnFYzI87C1WqRcu356Dk/wsoi90y+2wEfE="`, "", 1), `sum ""`},
		{"sum without h1", strings.Replace(goodPin, `"h1:eUU`, `"eUU`, 1), "want the module's go.sum hash"},
		{"sum too short", strings.Replace(goodPin, `wEfE=`, `wEf=`, 1), "want the module's go.sum hash"},
		{"go.mod sum format", strings.Replace(goodPin, `wEfE=`, `wEfE=/go.mod`, 1), "want the module's go.sum hash"},
		{"pkg_config without cgo", strings.Replace(goodPin, "cgo = true", "cgo = false", 1), "pkg_config needs cgo"},
		{"bad tag", strings.Replace(goodPin, `["seccomp"]`, `["seccomp netgo"]`, 1), `tags: "seccomp netgo"`},
		{"bad version var", strings.Replace(goodPin, "cgo = true", `cgo = true`+"\nversion_vars = [\"version\"]", 1), `version_vars: "version"`},
		{"no binaries", goodPin[:strings.Index(goodPin, "[[component.binary]]")], "no [[component.binary]]"},
		{"binary without name", strings.Replace(goodPin, "name = \"runc\"\npackage", "package", 1), `binary #1 (): name ""`},
		{"binary without install", strings.Replace(goodPin, `install = "/usr/sbin/runc"`, "", 1), `install ""`},
		{"relative install", strings.Replace(goodPin, `"/usr/sbin/runc"`, `"usr/sbin/runc"`, 1), `install "usr/sbin/runc"`},
		{"unclean install", strings.Replace(goodPin, `"/usr/sbin/runc"`, `"/usr/sbin/../runc"`, 1), "clean absolute path"},
		{"package outside module", strings.Replace(goodPin, `package = "."`, `package = "./../x"`, 1), `package "./../x"`},
		{"package pattern", strings.Replace(goodPin, `package = "."`, `package = "./..."`, 1), `package "./..."`},
		{"import path as package", strings.Replace(goodPin, `package = "."`, `package = "github.com/x/y"`, 1), `package "github.com/x/y"`},
		{"binary twice", goodPin + "[[component.binary]]\nname = \"runc\"\npackage = \"./x\"\ninstall = \"/usr/bin/runc2\"\n", "binary runc is listed twice"},
		{"component twice", goodPin + strings.Replace(goodPin, "/usr/sbin/runc", "/usr/bin/runc", 1), "component runc is pinned twice"},
		{"install path shared in a component", goodPin + "[[component.binary]]\nname = \"runc2\"\npackage = \"./x\"\ninstall = \"/usr/sbin/runc\"\n", "component #1 (runc): binary runc2: install path /usr/sbin/runc is also used by runc"},
		{"install path shared by components", goodPin + strings.Replace(goodPin, `name = "runc"`+"\nmodule", `name = "runc2"`+"\nmodule", 1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writePin(t, tt.body)
			p, err := Load(path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if len(p.Components) == 0 || p.Components[0].Binaries[0].Install != "/usr/sbin/runc" {
					t.Fatalf("Load: got %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load accepted it; want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q: want it to name %s and contain %q", err, path, tt.want)
			}
		})
	}
}

// The repository's own pin file must always load.
func TestRepositoryPins(t *testing.T) {
	p, err := Load("../go-components.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"containerd", "containerd-cri", "runc", "cni-plugins", "kubernetes", "etcd", "gvisor"} {
		if _, err := p.Find(name); err != nil {
			t.Error(err)
		}
	}
	if _, err := p.Find("docker"); err == nil {
		t.Error("Find(docker) succeeded")
	}
}

// The arm64 node gets the kubelet alone from the kubernetes component: its test-only control
// plane is left out, under a cache key of its own, and the pins are not changed.
func TestWithoutTestOnly(t *testing.T) {
	p, err := Load("../go-components.toml")
	if err != nil {
		t.Fatal(err)
	}
	k, err := p.Find("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	img := k.WithoutTestOnly()
	var names []string
	for _, b := range img.Binaries {
		names = append(names, b.Name)
	}
	if len(names) != 1 || names[0] != "kubelet" {
		t.Errorf("kubernetes without its test-only binaries: %v, want [kubelet]", names)
	}
	if len(k.Binaries) != 4 {
		t.Errorf("the pinned component lost binaries: %d left", len(k.Binaries))
	}
	tc := toolchain{GoVersion: "go1.26.0"}
	if cacheKey(k, "arm64", tc) == cacheKey(img, "arm64", tc) {
		t.Error("the kubelet alone has the whole component's cache key")
	}
	g, err := p.Find("gvisor")
	if err != nil {
		t.Fatal(err)
	}
	if cacheKey(g, "arm64", tc) != cacheKey(g.WithoutTestOnly(), "arm64", tc) {
		t.Error("a component without test-only binaries changed its cache key")
	}
}
