package imds

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "":
			w.Write([]byte("tok"))
		case r.Header.Get("X-aws-ec2-metadata-token") != "tok":
			http.Error(w, "no token", http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/local-hostname":
			w.Write([]byte("ip-10-0-0-7.ec2.internal"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := Client{Endpoint: srv.URL}
	ctx := context.Background()
	if b, err := c.Get(ctx, "/latest/meta-data/local-hostname", 255); err != nil || string(b) != "ip-10-0-0-7.ec2.internal" {
		t.Errorf("Get = %q, %v", b, err)
	}
	if _, err := c.Get(ctx, "/latest/user-data", 255); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing item: %v, want ErrNotFound", err)
	}
	if _, err := c.Get(ctx, "/latest/meta-data/local-hostname", 4); err == nil {
		t.Error("an answer over the limit was accepted")
	}
	srv.Close()
	if _, err := c.Get(ctx, "/latest/meta-data/local-hostname", 255); !errors.Is(err, ErrUnreachable) {
		t.Errorf("no service: %v, want ErrUnreachable", err)
	}
}
