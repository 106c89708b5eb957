package supervise

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestEnviron(t *testing.T) {
	base := []string{"PATH=/usr/bin", "HTTPS_PROXY=old"}
	tests := []struct {
		name    string
		file    *string // nil: no file
		want    []string
		wantErr string
	}{
		{name: "no file", want: base},
		{name: "empty", file: ptr(""), want: base},
		{name: "added and replaced", file: ptr("# proxy\nHTTPS_PROXY=proxy:3128\n\nNO_PROXY=localhost,.internal\n"),
			want: []string{"PATH=/usr/bin", "HTTPS_PROXY=proxy:3128", "NO_PROXY=localhost,.internal"}},
		{name: "value with =", file: ptr("A=b=c\n"), want: append(slices.Clone(base), "A=b=c")},
		{name: "not a variable", file: ptr("A=1\nexport B\n"), wantErr: "line 2: not KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "env")
			if tt.file != nil {
				if err := os.WriteFile(path, []byte(*tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			x := &Exec{Env: base, EnvFile: path}
			got, err := x.environ()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("environ = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("environ = %q, %v; want %q", got, err, tt.want)
			}
			if !slices.Equal(x.Env, base) {
				t.Errorf("Env changed to %q", x.Env)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// The kubelet's command-line-only flags come from its environment file at each start.
func TestArgsEnv(t *testing.T) {
	env := []string{"PATH=/usr/bin", "FLAGS=--a=1  --b=x,y", "FLAGSX=--no"}
	for _, tt := range []struct {
		argsEnv string
		env     []string
		want    []string
	}{
		{"", env, []string{"prog", "--config=c"}},
		{"FLAGS", env, []string{"prog", "--config=c", "--a=1", "--b=x,y"}},
		{"FLAGS", []string{"FLAGS="}, []string{"prog", "--config=c"}},
		{"FLAGS", []string{"PATH=/usr/bin"}, []string{"prog", "--config=c"}},
	} {
		x := &Exec{Path: "/usr/bin/prog", Args: []string{"--config=c"}, ArgsEnv: tt.argsEnv}
		if got := x.argv(tt.env); !slices.Equal(got, tt.want) {
			t.Errorf("ArgsEnv %q, env %q: argv %q, want %q", tt.argsEnv, tt.env, got, tt.want)
		}
	}
}
