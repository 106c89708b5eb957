package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// unpack reads a bundle: file names in order, and their contents.
func unpack(t *testing.T, b []byte) ([]string, map[string]string) {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		files[h.Name] = string(data)
	}
	return names, files
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "kernel.log"), []byte("k1\nk2\n"), 0o644)
	parts := []Part{
		File("os.json", func(context.Context) ([]byte, error) { return []byte(`{"version":"1"}`), nil }),
		{Name: "network.json"}, // no producer in this build
		File("time.json", func(context.Context) ([]byte, error) { return nil, NotAvailable("GET /time is not served") }),
		File("services.json", func(context.Context) ([]byte, error) { return nil, errors.New("init socket: connection refused") }),
		File("boom.json", func(context.Context) ([]byte, error) { panic("nil map") }),
		{Name: "logs", Produce: func(ctx context.Context, w *Writer) error {
			if err := w.AddFile("logs/kernel.log", filepath.Join(dir, "kernel.log")); err != nil {
				return err
			}
			return w.AddFile("logs/gone.log", filepath.Join(dir, "gone.log"))
		}},
		File("after.txt", func(context.Context) ([]byte, error) { return []byte("still here\n"), nil }),
	}
	var out bytes.Buffer
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	idx, err := Write(context.Background(), &out, parts, at)
	if err != nil {
		t.Fatal(err)
	}
	names, files := unpack(t, out.Bytes())
	wantNames := []string{"os.json", "network.json.unavailable", "time.json.unavailable", "services.json.error",
		"boom.json.error", "logs/kernel.log", "logs.error", "after.txt", IndexName}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("files %q, want %q", names, wantNames)
	}
	for name, want := range map[string]string{
		"os.json":                  `{"version":"1"}`,
		"network.json.unavailable": "not available: this build has no producer for network.json\n",
		"time.json.unavailable":    "not available: GET /time is not served\n",
		"services.json.error":      "error: init socket: connection refused\n",
		"boom.json.error":          "error: panic: nil map\n",
		"logs/kernel.log":          "k1\nk2\n",
		"after.txt":                "still here\n",
	} {
		if files[name] != want {
			t.Errorf("%s = %q, want %q", name, files[name], want)
		}
	}
	if !strings.Contains(files["logs.error"], "gone.log") {
		t.Errorf("logs.error = %q", files["logs.error"])
	}
	var back apitypes.BundleIndex
	if err := json.Unmarshal([]byte(files[IndexName]), &back); err != nil || !reflect.DeepEqual(back, idx) {
		t.Errorf("bundle.json %s (%v) is not the index %+v", files[IndexName], err, idx)
	}
	states := map[string]string{}
	for _, p := range idx.Parts {
		states[p.Name] = p.State
	}
	want := map[string]string{"os.json": "ok", "network.json": "unavailable", "time.json": "unavailable",
		"services.json": "error", "boom.json": "error", "logs": "error", "after.txt": "ok"}
	if !reflect.DeepEqual(states, want) || idx.Created != "2025-01-02T03:04:05Z" {
		t.Errorf("index %+v", idx)
	}
	if p := idx.Parts[5]; !reflect.DeepEqual(p.Files, []string{"logs/kernel.log", "logs.error"}) {
		t.Errorf("logs part files %q", p.Files)
	}
}

// failAfter is a client that goes away after n bytes.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errors.New("connection reset")
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteStopsWhenTheArchiveFails(t *testing.T) {
	calls := 0
	rng := rand.New(rand.NewPCG(1, 2))
	big := File("big", func(context.Context) ([]byte, error) {
		calls++
		b := make([]byte, 1<<20) // random, so gzip cannot make it small
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b, nil
	})
	_, err := Write(context.Background(), &failAfter{n: 1000}, []Part{big, big, big, big}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Write to a failing client = %v", err)
	}
	if calls == 4 {
		t.Error("every part was produced for a client that was gone")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, io.Discard, []Part{big}, time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context = %v", err)
	}
}
