package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ballast-os/ballast/tests/ociimage"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	remoteerrors "github.com/containerd/containerd/v2/core/remotes/errors"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var probe = ociimage.Image{
	Ref:        "ballast.test/probe:1",
	Files:      []ociimage.File{{Path: "/bin/probe", Mode: 0o755, Data: []byte("\x7fELF not really")}},
	Entrypoint: []string{"/bin/probe"},
	Cmd:        []string{"--all"},
}

func writeArchive(t *testing.T, write func(io.Writer, ociimage.Image) error, img ociimage.Image) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// client is a registry client of its own, not PushArchive's: containerd's resolver over an
// http.Client trusting roots (nil: the system's), with the given credentials (none when user is
// empty), dialling dial whatever the host in the ref.
type client struct {
	roots      *x509.CertPool
	user, pass string
	dial       string
}

func (c client) resolver() remotes.Resolver {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: c.roots},
		ForceAttemptHTTP2: true,
	}
	if c.dial != "" {
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, c.dial)
		}
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var opts []docker.AuthorizerOpt
	opts = append(opts, docker.WithAuthClient(hc))
	if c.user != "" {
		opts = append(opts, docker.WithAuthCreds(func(string) (string, string, error) { return c.user, c.pass, nil }))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithClient(hc),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(opts...)),
	)})
}

func trusting(t *testing.T, r *Registry) *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(r.CACertPEM) {
		t.Fatal("CACertPEM holds no certificate")
	}
	return pool
}

func fetch(t *testing.T, ctx context.Context, f remotes.Fetcher, desc ocispec.Descriptor) []byte {
	t.Helper()
	rc, err := f.Fetch(ctx, desc)
	if err != nil {
		t.Fatalf("fetch %s: %v", desc.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(b); got != desc.Digest || int64(len(b)) != desc.Size {
		t.Fatalf("fetched %s (%d bytes), descriptor says %s (%d)", got, len(b), desc.Digest, desc.Size)
	}
	return b
}

// pull resolves ref and fetches its manifest, config and single layer; it returns the layer's files.
func pull(t *testing.T, ctx context.Context, res remotes.Resolver, ref, wantDigest string) (ocispec.Manifest, map[string][]byte) {
	t.Helper()
	name, desc, err := res.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("resolve %s: %v", ref, err)
	}
	if name != ref || desc.Digest.String() != wantDigest {
		t.Fatalf("resolved %s to %s, want %s (PushArchive's digest)", name, desc.Digest, wantDigest)
	}
	f, err := res.Fetcher(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var mf ocispec.Manifest
	if err := json.Unmarshal(fetch(t, ctx, f, desc), &mf); err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(fetch(t, ctx, f, mf.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != "/bin/probe" || strings.Join(cfg.Config.Cmd, " ") != "--all" {
		t.Errorf("config %+v", cfg.Config)
	}
	if len(mf.Layers) != 1 || len(cfg.RootFS.DiffIDs) != 1 {
		t.Fatalf("manifest layers %+v, diff ids %v", mf.Layers, cfg.RootFS.DiffIDs)
	}
	layer := fetch(t, ctx, f, mf.Layers[0])
	var rd io.Reader = bytes.NewReader(layer)
	if strings.HasSuffix(mf.Layers[0].MediaType, "gzip") { // +gzip (OCI), .gzip (Docker)
		if rd, err = gzip.NewReader(rd); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(plain) != cfg.RootFS.DiffIDs[0] {
		t.Errorf("layer's diff id %s, config says %s", digest.FromBytes(plain), cfg.RootFS.DiffIDs[0])
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	return mf, files
}

// An image pushed from an OCI layout archive is pulled back whole by another client.
func TestPushPull(t *testing.T) {
	r := Start(t, Options{Username: "tester", Password: "s3cret"})
	if r.Username != "tester" || r.Password != "s3cret" {
		t.Fatalf("credentials %q %q", r.Username, r.Password)
	}
	ctx := context.Background()
	archivePath := writeArchive(t, ociimage.WriteOCI, probe)
	ref := r.Addr + "/ballast/probe:1"
	dgst, err := r.PushArchive(ctx, archivePath, ref)
	if err != nil {
		t.Fatal(err)
	}

	// The digest is the archive's manifest's: the registry holds the same bytes.
	var archived struct{ Manifests []ocispec.Descriptor }
	readTarJSON(t, archivePath, "index.json", &archived)
	if len(archived.Manifests) != 1 || archived.Manifests[0].Digest.String() != dgst {
		t.Fatalf("pushed %s, the archive's index %+v", dgst, archived.Manifests)
	}

	mf, files := pull(t, ctx, client{roots: trusting(t, r), user: "tester", pass: "s3cret"}.resolver(), ref, dgst)
	if mf.MediaType != ocispec.MediaTypeImageManifest || mf.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("manifest %+v", mf)
	}
	if string(files["bin/probe"]) != "\x7fELF not really" {
		t.Errorf("layer files %q", files)
	}
	// The blob the registry serves is the archive's.
	if b := readTar(t, archivePath, "blobs/sha256/"+mf.Layers[0].Digest.Encoded()); digest.FromBytes(b) != mf.Layers[0].Digest {
		t.Errorf("the archive has no layer %s", mf.Layers[0].Digest)
	}

	// A second tag of the same image, pushed again: the registry already has the blobs.
	if d2, err := r.PushArchive(ctx, archivePath, r.Addr+"/ballast/probe:latest"); err != nil || d2 != dgst {
		t.Errorf("second push: %s, %v", d2, err)
	}
	if _, desc, err := (client{roots: trusting(t, r), user: "tester", pass: "s3cret"}).resolver().Resolve(ctx, r.Addr+"/ballast/probe:latest"); err != nil || desc.Digest.String() != dgst {
		t.Errorf("resolve latest: %v, %v", desc.Digest, err)
	}
	// A tag never pushed is not found.
	if _, _, err := (client{roots: trusting(t, r), user: "tester", pass: "s3cret"}).resolver().Resolve(ctx, r.Addr+"/ballast/probe:2"); err == nil {
		t.Error("an unknown tag resolves")
	}
}

// A `docker save` archive pushes as a Docker schema 2 image.
func TestPushDockerSave(t *testing.T) {
	r := Start(t, Options{})
	if r.Username == "" || len(r.Password) < 16 {
		t.Fatalf("generated credentials %q %q", r.Username, r.Password)
	}
	ctx := context.Background()
	ref := r.Addr + "/ballast/probe-docker:1"
	dgst, err := r.PushArchive(ctx, writeArchive(t, ociimage.WriteDocker, probe), ref)
	if err != nil {
		t.Fatal(err)
	}
	mf, files := pull(t, ctx, client{roots: trusting(t, r), user: r.Username, pass: r.Password}.resolver(), ref, dgst)
	if mf.MediaType != images.MediaTypeDockerSchema2Manifest {
		t.Errorf("manifest media type %q", mf.MediaType)
	}
	if string(files["bin/probe"]) != "\x7fELF not really" {
		t.Errorf("layer files %q", files)
	}
}

// The registry lets in only its credentials, over TLS from its own CA.
func TestRefused(t *testing.T) {
	r := Start(t, Options{})
	ctx := context.Background()
	ref := r.Addr + "/ballast/probe:1"
	if _, err := r.PushArchive(ctx, writeArchive(t, ociimage.WriteOCI, probe), ref); err != nil {
		t.Fatal(err)
	}
	roots := trusting(t, r)
	if _, _, err := (client{roots: roots, user: r.Username, pass: r.Password}).resolver().Resolve(ctx, ref); err != nil {
		t.Fatalf("the right client is refused: %v", err)
	}

	for _, c := range []struct {
		name string
		client
	}{
		{"wrong password", client{roots: roots, user: r.Username, pass: r.Password + "x"}},
		{"unknown user", client{roots: roots, user: "nobody", pass: r.Password}},
		{"no credentials", client{roots: roots}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := c.resolver().Resolve(ctx, ref)
			if err == nil {
				t.Fatal("resolved")
			}
			if !unauthorized(err) {
				t.Fatalf("refused, but not as unauthorized: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}

	t.Run("untrusted CA", func(t *testing.T) {
		_, _, err := (client{user: r.Username, pass: r.Password}).resolver().Resolve(ctx, ref)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("want an unknown authority error, got %v", err)
		}
	})
	t.Run("another registry's CA", func(t *testing.T) {
		other := Start(t, Options{})
		_, _, err := (client{roots: trusting(t, other), user: r.Username, pass: r.Password}).resolver().Resolve(ctx, ref)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("want an unknown authority error, got %v", err)
		}
	})
	t.Run("plain HTTP", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + r.Addr + "/v2/")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest { // Go's TLS server answers plain HTTP with 400
				t.Fatalf("plain HTTP answered %s", resp.Status)
			}
		}
	})
	t.Run("challenge", func(t *testing.T) {
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		resp, err := hc.Get("https://" + r.Addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("/v2/ without credentials: %s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
		req, _ := http.NewRequest("GET", "https://"+r.Addr+"/v2/", nil)
		req.SetBasicAuth(r.Username, r.Password)
		if resp, err = hc.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/v2/ with credentials: %s", resp.Status)
		}
	})
}

func unauthorized(err error) bool {
	if st, ok := errors.AsType[remoteerrors.ErrUnexpectedStatus](err); ok {
		return st.StatusCode == http.StatusUnauthorized
	}
	return errors.Is(err, docker.ErrInvalidAuthorization)
}

// The server certificate holds the extra names, and a ref may name the registry by them.
func TestHostnames(t *testing.T) {
	r := Start(t, Options{Hostnames: []string{"10.0.2.100", "registry.test"}})
	ctx := context.Background()
	archivePath := writeArchive(t, ociimage.WriteOCI, probe)
	for _, host := range []string{"10.0.2.100:5000", "registry.test:5000", "localhost:5000"} {
		ref := host + "/ballast/probe:1"
		dgst, err := r.PushArchive(ctx, archivePath, ref)
		if err != nil {
			t.Fatal(err)
		}
		pull(t, ctx, client{roots: trusting(t, r), user: r.Username, pass: r.Password, dial: r.Addr}.resolver(), ref, dgst)
	}
	// A name it does not hold fails TLS verification.
	_, err := r.PushArchive(ctx, archivePath, "elsewhere.test:5000/ballast/probe:1")
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("push naming a host outside the certificate: %v", err)
	}
}

// Start listens on a given address.
func TestGivenAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := Start(t, Options{Addr: addr})
	if r.Addr != addr {
		t.Fatalf("listens on %s, asked for %s", r.Addr, addr)
	}
	if _, err := r.PushArchive(context.Background(), writeArchive(t, ociimage.WriteOCI, probe), addr+"/ballast/probe:1"); err != nil {
		t.Fatal(err)
	}
}

func readTar(t *testing.T, archivePath, name string) []byte {
	t.Helper()
	f, err := os.Open(archivePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s in %s: %v", name, archivePath, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func readTarJSON(t *testing.T, archivePath, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(readTar(t, archivePath, name), v); err != nil {
		t.Fatal(err)
	}
}
