package netconf

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMetadataChanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata-hostname")
	m := New(Options{MetadataHostname: path})
	steps := []struct {
		write *string // nil: remove
		want  bool
	}{
		{nil, false},
		{ptr("ip-10-0-0-7.ec2.internal\n"), true},
		{ptr("ip-10-0-0-7.ec2.internal\n"), false},
		{ptr("ip-10-0-0-8.ec2.internal\n"), true},
		{nil, true},
	}
	for i, s := range steps {
		if s.write == nil {
			os.Remove(path)
		} else if err := os.WriteFile(path, []byte(*s.write), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := m.metadataChanged(); got != s.want {
			t.Errorf("step %d: changed = %v, want %v", i, got, s.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
