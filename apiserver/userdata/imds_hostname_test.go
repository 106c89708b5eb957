package userdata

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// The host name is asked for until the service answers (here: the third time), then written.
func TestWriteHostname(t *testing.T) {
	var asks atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut:
			w.Write([]byte("tok"))
		case r.URL.Path == "/latest/meta-data/local-hostname":
			if asks.Add(1) < 3 {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ip-10-0-0-7.ec2.internal"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "network", "metadata-hostname")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WriteHostname(ctx, srv.URL, path, 10*time.Millisecond, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "ip-10-0-0-7.ec2.internal\n" || asks.Load() != 3 {
		t.Errorf("%s = %q, %v after %d asks", path, b, err, asks.Load())
	}
	// No service: it keeps asking until the context ends.
	srv.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := WriteHostname(ctx, srv.URL, path+"2", 10*time.Millisecond, 20*time.Millisecond); err == nil {
		t.Error("WriteHostname without a service returned nil")
	}
}
