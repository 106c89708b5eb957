package runsclabel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFiles(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"create as the shim runs it", []string{"--root=/run/r", "--log=/l", "--debug", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, []string{"/b/config.json"}},
		{"run with = form", []string{"run", "--bundle=/b2", "id"}, []string{"/b2/config.json"}},
		{"create in the bundle", []string{"create", "id"}, []string{"/cwd/config.json"}},
		{"relative bundle", []string{"create", "-bundle", "b", "id"}, []string{"/cwd/b/config.json"}},
		{"exec", []string{"--root=/r", "exec", "--process", "/tmp/p.json", "id"}, []string{"/tmp/p.json"}},
		{"start", []string{"--root=/r", "start", "id"}, nil},
		{"state", []string{"state", "id"}, nil},
		{"nothing", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Files(tt.args, "/cwd"); !slices.Equal(got, tt.want) {
				t.Errorf("Files(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestDropProcessLabel(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		changed bool
		want    map[string]any // the process object after
	}{
		{"spec with a label", `{"ociVersion":"1.2.0","process":{"args":["/pause"],"selinuxLabel":"system_u:system_r:pod_t:s0:c1,c2","cwd":"/"},"linux":{"mountLabel":"system_u:object_r:pod_file_t:s0:c1,c2"}}`,
			true, map[string]any{"args": []any{"/pause"}, "cwd": "/"}},
		{"spec without", `{"process":{"args":["/x"]}}`, false, map[string]any{"args": []any{"/x"}}},
		{"exec process file", `{"args":["sh"],"selinuxLabel":"system_u:system_r:pod_t:s0:c1,c2"}`, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(p, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			changed, err := DropProcessLabel(p)
			if err != nil || changed != tt.changed {
				t.Fatalf("changed %v, %v; want %v", changed, err, tt.changed)
			}
			b, _ := os.ReadFile(p)
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			proc := doc
			if pr, ok := doc["process"].(map[string]any); ok {
				proc = pr
				if tt.changed {
					if lin, _ := doc["linux"].(map[string]any); lin["mountLabel"] == nil {
						t.Errorf("mount label dropped too: %s", b)
					}
				}
			}
			if _, ok := proc["selinuxLabel"]; ok {
				t.Errorf("label still there: %s", b)
			}
			if tt.want != nil {
				if got, _ := json.Marshal(proc); string(got) != mustJSON(t, tt.want) {
					t.Errorf("process %s, want %s", got, mustJSON(t, tt.want))
				}
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
		})
	}
	if _, err := DropProcessLabel(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("a missing spec was not an error")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if _, err := DropProcessLabel(bad); err == nil {
		t.Error("a broken spec was not an error")
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
