package gocomponents

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const wrapperPin = `
[[component]]
name = "kubernetes"
module = "k8s.io/kubernetes"
version = "v1.31.4"
sum = "h1:VQDX52gTQnq8C/jCo48AQuDsWbWMh9XXxhQRDYjgakw="
wrapper = "wrappers/kubernetes"
version_vars = ["k8s.io/component-base/version.gitVersion"]

[component.string_vars]
"k8s.io/component-base/version.gitMajor" = "1"
"k8s.io/component-base/version.buildDate" = "2024-12-10T11:37:26Z"

[[component.binary]]
name = "kubelet"
package = "k8s.io/kubernetes/cmd/kubelet"
install = "/usr/bin/kubelet"

[[component.binary]]
name = "kube-apiserver"
package = "k8s.io/kubernetes/cmd/kube-apiserver"
test_only = true

[[component]]
name = "etcd"
module = "go.etcd.io/etcd/server/v3"
version = "v3.5.21"
sum = "h1:9w0/k12majtgarGmlMVuhwXRI2ob3/d1Ik3X5TKo0yU="
test_only = true

[[component.binary]]
name = "etcd"
package = "."
`

const wrapperGoMod = `module example.com/wrappers/kubernetes // a comment

go 1.24

require (
	github.com/x/y v1.0.0 // indirect
	k8s.io/kubernetes v1.31.4
)

replace (
	k8s.io/api => k8s.io/api v0.31.4
)
`

const wrapperGoSum = `github.com/x/y v1.0.0 h1:AAAA
k8s.io/kubernetes v1.31.4 h1:VQDX52gTQnq8C/jCo48AQuDsWbWMh9XXxhQRDYjgakw=
k8s.io/kubernetes v1.31.4/go.mod h1:9xmT2buyTYj8TRKwRae7FcuY8k5+xlxv7VivvO0KKfs=
`

// writeWrapperPin writes a pin file and its wrapper module's files (nil: not written).
func writeWrapperPin(t *testing.T, pin string, goMod, goSum *string) string {
	t.Helper()
	dir := t.TempDir()
	w := filepath.Join(dir, "wrappers", "kubernetes")
	if err := os.MkdirAll(w, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]*string{"go.mod": goMod, "go.sum": goSum} {
		if body == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(w, name), []byte(*body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "go-components.toml")
	if err := os.WriteFile(p, []byte(pin), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadWrapperAndTestOnly(t *testing.T) {
	str := func(s string) *string { return &s }
	r := strings.NewReplacer
	tests := []struct {
		name         string
		pin          string
		goMod, goSum *string
		want         string // substring of the error; "" means success
	}{
		{"good", wrapperPin, str(wrapperGoMod), str(wrapperGoSum), ""},
		{"single-line require", wrapperPin, str("module w\nrequire k8s.io/kubernetes v1.31.4\n"), str(wrapperGoSum), ""},
		{"no go.mod", wrapperPin, nil, str(wrapperGoSum), "component kubernetes: wrapper wrappers/kubernetes: open "},
		{"no go.sum", wrapperPin, str(wrapperGoMod), nil, "component kubernetes: wrapper wrappers/kubernetes: open "},
		{"module not required", wrapperPin, str("module w\nrequire k8s.io/api v0.31.4\n"), str(wrapperGoSum),
			"component kubernetes: wrapper wrappers/kubernetes: go.mod does not require k8s.io/kubernetes"},
		{"other version required", wrapperPin, str(strings.Replace(wrapperGoMod, "k8s.io/kubernetes v1.31.4", "k8s.io/kubernetes v1.31.5", 1)), str(wrapperGoSum),
			"go.mod requires k8s.io/kubernetes v1.31.5, the pin says v1.31.4"},
		{"module replaced", wrapperPin, str(wrapperGoMod + "replace k8s.io/kubernetes => ../kubernetes\n"), str(wrapperGoSum),
			"component kubernetes: wrapper wrappers/kubernetes: go.mod replaces k8s.io/kubernetes"},
		{"module replaced at a version", wrapperPin, str(strings.Replace(wrapperGoMod, "k8s.io/api => k8s.io/api v0.31.4", "k8s.io/kubernetes v1.31.4 => example.com/fork v1.0.0", 1)), str(wrapperGoSum),
			"go.mod replaces k8s.io/kubernetes"},
		{"required twice", wrapperPin, str(wrapperGoMod + "require k8s.io/kubernetes v1.31.5\n"), str(wrapperGoSum), "k8s.io/kubernetes required twice"},
		{"unterminated block", wrapperPin, str("module w\nrequire (\nk8s.io/kubernetes v1.31.4\n"), str(wrapperGoSum), "unterminated require block"},
		{"go.sum lacks the sum", wrapperPin, str(wrapperGoMod), str(strings.Replace(wrapperGoSum, "VQDX", "WQDX", 1)),
			`component kubernetes: wrapper wrappers/kubernetes: go.sum lacks "k8s.io/kubernetes v1.31.4 h1:VQDX`},
		{"wrapper outside", r(`"wrappers/kubernetes"`, `"../kubernetes"`).Replace(wrapperPin), nil, nil,
			`component #1 (kubernetes): wrapper "../kubernetes": want a clean relative directory`},
		{"wrapper absolute", r(`"wrappers/kubernetes"`, `"/kubernetes"`).Replace(wrapperPin), nil, nil, `wrapper "/kubernetes"`},
		{"wrapper package outside the module", r(`"k8s.io/kubernetes/cmd/kubelet"`, `"k8s.io/kubelet/cmd/x"`).Replace(wrapperPin), nil, nil,
			`component #1 (kubernetes): binary #1 (kubelet): package "k8s.io/kubelet/cmd/x": a wrapper component builds import paths inside k8s.io/kubernetes`},
		{"wrapper package prefix only", r(`"k8s.io/kubernetes/cmd/kubelet"`, `"k8s.io/kubernetes2/cmd"`).Replace(wrapperPin), nil, nil, `package "k8s.io/kubernetes2/cmd"`},
		{"wrapper relative package", r(`"k8s.io/kubernetes/cmd/kubelet"`, `"./cmd/kubelet"`).Replace(wrapperPin), nil, nil, `package "./cmd/kubelet"`},
		{"wrapper package pattern", r(`"k8s.io/kubernetes/cmd/kubelet"`, `"k8s.io/kubernetes/cmd/..."`).Replace(wrapperPin), nil, nil, `package "k8s.io/kubernetes/cmd/..."`},
		{"string var with space", r(`= "1"`, `= "1 -X a.b=c"`).Replace(wrapperPin), nil, nil,
			`component #1 (kubernetes): string_vars: k8s.io/component-base/version.gitMajor = "1 -X a.b=c": want a value without spaces`},
		{"string var with quote", r(`= "1"`, `= "1'"`).Replace(wrapperPin), nil, nil, "string_vars: k8s.io/component-base/version.gitMajor"},
		{"string var name", r(`"k8s.io/component-base/version.gitMajor"`, `"gitMajor"`).Replace(wrapperPin), nil, nil, `string_vars: "gitMajor" is not a package-qualified variable`},
		{"string var is a version var", r(`"k8s.io/component-base/version.gitMajor"`, `"k8s.io/component-base/version.gitVersion"`).Replace(wrapperPin), nil, nil,
			"string_vars: k8s.io/component-base/version.gitVersion is also in version_vars"},
		{"test-only binary installed", r("test_only = true\n\n[[component]]", "test_only = true\ninstall = \"/usr/bin/x\"\n\n[[component]]").Replace(wrapperPin), nil, nil,
			`component #1 (kubernetes): binary #2 (kube-apiserver): install "/usr/bin/x": a test-only binary is never installed`},
		{"test-only component installs", r("package = \".\"", "package = \".\"\ninstall = \"/usr/bin/etcd\"").Replace(wrapperPin), nil, nil,
			`component #2 (etcd): binary #1 (etcd): install "/usr/bin/etcd": a test-only binary is never installed`},
		{"test-only and dev-only", r("test_only = true\n\n[[component]]", "test_only = true\ndev_only = true\n\n[[component]]").Replace(wrapperPin), nil, nil,
			"binary #2 (kube-apiserver): dev_only: a test-only binary is never installed"},
		{"installed binary without install", r("install = \"/usr/bin/kubelet\"\n", "").Replace(wrapperPin), nil, nil,
			`component #1 (kubernetes): binary #1 (kubelet): install "": want a clean absolute path`},
		{"test_only misspelt", r("test_only = true\n\n[[component]]", "testonly = true\n\n[[component]]").Replace(wrapperPin), nil, nil,
			`unknown key "component.binary.testonly"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeWrapperPin(t, tt.pin, tt.goMod, tt.goSum)
			p, err := Load(path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				c, _ := p.Find("kubernetes")
				if string(c.wrapper.GoMod) != *tt.goMod || string(c.wrapper.GoSum) != *tt.goSum {
					t.Fatal("the wrapper's files were not kept")
				}
				if len(c.StringVars) != 2 || !c.Binaries[1].TestOnly {
					t.Fatalf("Load: got %+v", c)
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

func TestTestOnlyBinaries(t *testing.T) {
	p, err := Load(writeWrapperPin(t, wrapperPin, new(wrapperGoMod), new(wrapperGoSum)))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := p.Find("kubernetes")
	e, _ := p.Find("etcd")
	got := map[string]bool{}
	for _, c := range []Component{k, e} {
		for _, b := range result(c, "key", "/cache", manifest{}, true).Binaries {
			got[b.Name] = b.TestOnly
		}
	}
	if got["kubelet"] || !got["kube-apiserver"] || !got["etcd"] {
		t.Fatalf("test-only: %v", got)
	}
}

// A wrapper component built without Load has no wrapper bytes to build or key: refused.
func TestBuildNeedsLoadedWrapper(t *testing.T) {
	p, err := Load(writeWrapperPin(t, wrapperPin, new(wrapperGoMod), new(wrapperGoSum)))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Find("kubernetes")
	c.wrapper = wrapperFiles{}
	_, err = Build(context.Background(), c, Options{CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "kubernetes v1.31.4: wrapper wrappers/kubernetes was not read") {
		t.Fatalf("Build: %v", err)
	}
}

// The repository's wrappers pass Load's cross-checks, and their go.mod keeps the module's
// GODEBUG defaults.
func TestRepositoryWrappers(t *testing.T) {
	p, err := Load("../go-components.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kubernetes", "etcd"} {
		c, err := p.Find(name)
		if err != nil {
			t.Fatal(err)
		}
		if c.Wrapper == "" || !c.wrapper.loaded() || !c.TestOnly && name == "etcd" {
			t.Errorf("%s: wrapper %q loaded %v test-only %v", name, c.Wrapper, c.wrapper.loaded(), c.TestOnly)
		}
		if !strings.Contains(string(c.wrapper.GoMod), "\ngodebug default=go1.") {
			t.Errorf("%s: the wrapper's go.mod does not pin the module's GODEBUG defaults", name)
		}
	}
}
