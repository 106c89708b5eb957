package userdata

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// imdsServer is a metadata service with the IMDSv2 token flow, as EC2 runs it.
type imdsServer struct {
	userData *string // nil: the instance has none
	mu       sync.Mutex
	requests []string
}

func (s *imdsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	s.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Write([]byte("tok-123"))
	case r.Method == http.MethodGet && r.URL.Path == "/latest/user-data":
		if r.Header.Get("X-aws-ec2-metadata-token") != "tok-123" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if s.userData == nil {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(*s.userData))
	default:
		http.NotFound(w, r)
	}
}

func TestIMDS(t *testing.T) {
	ud := "[settings]\nmotd = \"from imds\"\n"
	srv := &imdsServer{userData: &ud}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	data, origin, err := IMDS{Endpoint: ts.URL + "/"}.Fetch(context.Background())
	if err != nil || string(data) != ud || origin != ts.URL+"/latest/user-data" {
		t.Fatalf("Fetch = %q, %q, %v", data, origin, err)
	}
	if strings.Join(srv.requests, ",") != "PUT /latest/api/token,GET /latest/user-data" {
		t.Fatalf("requests %q", srv.requests)
	}

	// An instance without user data.
	none := httptest.NewServer(&imdsServer{})
	defer none.Close()
	if _, _, err := (IMDS{Endpoint: none.URL}).Fetch(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch without user data = %v", err)
	}
	// No metadata service at all: nothing listens, or nothing answers in time.
	ln := httptest.NewServer(http.NotFoundHandler())
	dead := ln.URL
	ln.Close()
	if _, _, err := (IMDS{Endpoint: dead}).Fetch(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch with nothing listening = %v", err)
	}
	// A service that is unreachable at first (the NIC has no lease yet) is tried again for Wait.
	late, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := late.Addr().String()
	late.Close()
	lateSrv := &http.Server{Handler: &imdsServer{userData: &ud}}
	defer lateSrv.Close()
	go func() {
		time.Sleep(600 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("late listener: %v", err)
			return
		}
		lateSrv.Serve(ln)
	}()
	if data, _, err := (IMDS{Endpoint: "http://" + addr, Wait: 10 * time.Second}).Fetch(context.Background()); err != nil || string(data) != ud {
		t.Fatalf("Fetch from a service that comes up late = %q, %v", data, err)
	}
	// Nothing listening for the whole wait: the service is absent, once the wait is over.
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.Addr().String()
	gone.Close()
	start := time.Now()
	if _, _, err := (IMDS{Endpoint: "http://" + goneAddr, Wait: 700 * time.Millisecond}).Fetch(context.Background()); !errors.Is(err, ErrNotFound) || time.Since(start) < 500*time.Millisecond {
		t.Fatalf("Fetch with nothing listening for the whole wait = %v after %v", err, time.Since(start))
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	start = time.Now()
	if _, _, err := (IMDS{Endpoint: slow.URL, Timeout: 100 * time.Millisecond}).Fetch(context.Background()); !errors.Is(err, ErrNotFound) || time.Since(start) > 2*time.Second {
		t.Fatalf("Fetch from a silent service = %v after %v", err, time.Since(start))
	}
	// A service that refuses the token is an error, not absence.
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer refusing.Close()
	if _, _, err := (IMDS{Endpoint: refusing.URL}).Fetch(context.Background()); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch with a refused token = %v", err)
	}
}

func TestCmdline(t *testing.T) {
	ud := "[settings]\nmotd = \"from the command line\"\n"
	enc := base64.StdEncoding.EncodeToString([]byte(ud))
	tests := []struct {
		name, cmdline, want, wantErr string
		notFound                     bool
	}{
		{name: "padded", cmdline: "console=ttyS0 ballast.userdata=" + enc + " quiet\n", want: ud},
		{name: "unpadded", cmdline: "ballast.userdata=" + strings.TrimRight(enc, "="), want: ud},
		{name: "last wins", cmdline: "ballast.userdata=eA== ballast.userdata=" + enc, want: ud},
		{name: "absent", cmdline: "console=ttyS0 quiet", notFound: true},
		{name: "not base64", cmdline: "ballast.userdata=%%%", wantErr: "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cmdline")
			os.WriteFile(path, []byte(tt.cmdline), 0o644)
			data, origin, err := Cmdline{Path: path}.Fetch(context.Background())
			switch {
			case tt.notFound:
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Fetch = %v, want ErrNotFound", err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Fetch = %v, want %q", err, tt.wantErr)
				}
			default:
				if err != nil || string(data) != tt.want || origin != path+":ballast.userdata" {
					t.Fatalf("Fetch = %q, %q, %v", data, origin, err)
				}
			}
		})
	}
}
