// Package registry runs a real container registry for tests, in this process: the CNCF
// distribution registry (github.com/distribution/distribution/v3, what `docker run registry:3`
// serves) on a loopback port, over TLS from a CA made per Start, with htpasswd basic auth and
// filesystem storage in a temporary directory. PushArchive pushes an image archive made by
// tests/ociimage into it through the registry HTTP API, as any client does.
//
// It is for tests only: nothing an image is built from may import it (the registry drags in its
// storage drivers' SDKs).
package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	// The registry finds its auth and storage by name: register the two it is configured with.
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Options configures Start; the zero value is a registry on a random loopback port with generated
// credentials.
type Options struct {
	// Addr is the listen address, default "127.0.0.1:0" (a free port).
	Addr string
	// Username and Password are the only credentials the registry accepts (basic auth, an htpasswd
	// file with a bcrypt hash written by Start). Empty: "ballast" and a random password.
	Username, Password string
	// Hostnames are DNS names or IP addresses the server certificate holds besides 127.0.0.1, ::1
	// and localhost: the names a client elsewhere uses for it (e.g. "10.0.2.100", "registry.test").
	Hostnames []string
}

// Registry is a running registry, stopped by the test's cleanup.
type Registry struct {
	// Addr is the host:port it listens on (127.0.0.1:port when it listens on every address).
	Addr string
	// CACertPEM is the certificate of the CA that signed its server certificate, made for this
	// Start (ECDSA P-256): what a client has to trust.
	CACertPEM []byte
	// Username and Password are the credentials it accepts.
	Username, Password string
	// Dir holds the registry's storage (filesystem driver root) and its htpasswd file.
	Dir string

	client *http.Client // trusts CACertPEM and dials Addr whatever the host in a ref
}

var quietOnce sync.Once

// quiet keeps the registry's logging down to its server errors. It logs through logrus's standard
// logger (there is no other way in): every request at info, every authentication challenge at
// warning, every 4xx answer (a client asking whether a blob exists before pushing it gets 404) at
// error.
func quiet() {
	quietOnce.Do(func() {
		if logrus.GetLevel() > logrus.ErrorLevel {
			logrus.SetLevel(logrus.ErrorLevel)
		}
		std := logrus.StandardLogger()
		std.SetFormatter(clientErrorsDropped{std.Formatter})
	})
}

type clientErrorsDropped struct{ logrus.Formatter }

func (f clientErrorsDropped) Format(e *logrus.Entry) ([]byte, error) {
	if status, ok := e.Data["http.response.status"].(int); ok && status < 500 {
		return nil, nil
	}
	return f.Formatter.Format(e)
}

// Start runs a registry until the test ends; it fails the test if it cannot.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	r, stop, err := start(o, t.TempDir())
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	t.Cleanup(stop)
	return r
}

func start(o Options, dir string) (_ *Registry, stop func(), err error) {
	quiet()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Username == "" {
		o.Username = "ballast"
	}
	if o.Password == "" {
		b := make([]byte, 12)
		rand.Read(b)
		o.Password = hex.EncodeToString(b)
	}
	caPEM, serverCert, err := makeCerts(o.Hostnames)
	if err != nil {
		return nil, nil, err
	}
	// Cost 4: the registry checks the password on every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
	if err != nil {
		return nil, nil, err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(o.Username+":"+string(hash)+"\n"), 0o600); err != nil {
		return nil, nil, err
	}
	secret := make([]byte, 16)
	rand.Read(secret)

	config := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": filepath.Join(dir, "storage")},
			"delete":     configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
			},
		},
		Auth: configuration.Auth{
			"htpasswd": configuration.Parameters{"realm": "ballast-test-registry", "path": htpasswd},
		},
	}
	config.HTTP.Secret = hex.EncodeToString(secret)

	// NewApp panics on a bad configuration.
	app, err := func() (app *handlers.App, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("distribution: %v", p)
			}
		}()
		return handlers.NewApp(context.Background(), config), nil
	}()
	if err != nil {
		return nil, nil, err
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		app.Shutdown()
		return nil, nil, err
	}
	srv := &http.Server{
		Handler:           app,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		// Handshakes refused by clients that do not trust the CA are what some tests want.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeTLS(ln, "", "")
	}()

	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP
	if host.IsUnspecified() {
		host = net.IPv4(127, 0, 0, 1)
	}
	r := &Registry{
		Addr:      net.JoinHostPort(host.String(), fmt.Sprint(addr.Port)),
		CACertPEM: caPEM,
		Username:  o.Username,
		Password:  o.Password,
		Dir:       dir,
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tr := docker.DefaultHTTPTransport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	tr.Proxy = nil
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, r.Addr)
	}
	r.client = &http.Client{Transport: tr}

	// The test is over: no request is waited for (and a client's connection that never sent one
	// would hold a graceful Shutdown for 5 s).
	stop = func() {
		tr.CloseIdleConnections()
		srv.Close()
		<-served
		app.Shutdown()
	}
	return r, stop, nil
}

// makeCerts makes a CA and a server certificate it signs, for the loopback addresses and names.
func makeCerts(names []string) (caPEM []byte, server tls.Certificate, err error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, server, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ballast test registry CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, server, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, server, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, server, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "ballast test registry"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, server, err
	}
	server = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), server, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// PushArchive pushes the image in an OCI image layout tarball or a `docker save` tarball (as
// tests/ociimage writes them; it must hold exactly one image) to the registry as ref
// ("host:port/repository:tag"), with containerd's registry client over HTTPS and the registry's
// credentials: blobs, then the manifest (or index) under the tag. It returns the manifest's
// digest. The host part of ref is only a name: the push always goes to r.Addr, so a ref may use a
// name the certificate holds (Options.Hostnames), e.g. the one a VM knows the registry by.
//
// A `docker save` archive is pushed as containerd imports it: a Docker schema 2 manifest with the
// layer as it is in the archive (an uncompressed tar).
func (r *Registry) PushArchive(ctx context.Context, archivePath, ref string) (digest string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("registry: push %s as %s: %w", archivePath, ref, err)
		}
	}()
	f, err := os.Open(archivePath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "registry-push-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	store, err := local.NewStore(dir)
	if err != nil {
		return "", err
	}
	indexDesc, err := archive.ImportIndex(ctx, store, f)
	if err != nil {
		return "", err
	}
	b, err := content.ReadBlob(ctx, store, indexDesc)
	if err != nil {
		return "", err
	}
	var index ocispec.Index
	if err := json.Unmarshal(b, &index); err != nil {
		return "", err
	}
	if len(index.Manifests) != 1 {
		return "", fmt.Errorf("the archive holds %d images, not one", len(index.Manifests))
	}
	desc := ocispec.Descriptor{
		MediaType: index.Manifests[0].MediaType,
		Digest:    index.Manifests[0].Digest,
		Size:      index.Manifests[0].Size,
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: r.hosts()})
	pusher, err := resolver.Pusher(ctx, ref)
	if err != nil {
		return "", err
	}
	if err := remotes.PushContent(ctx, pusher, desc, store, nil, platforms.All, nil); err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// hosts is the registry configuration of PushArchive's client: HTTPS to r.Addr, trusting the CA,
// with the credentials.
func (r *Registry) hosts() docker.RegistryHosts {
	auth := docker.NewDockerAuthorizer(
		docker.WithAuthClient(r.client),
		docker.WithAuthCreds(func(string) (string, string, error) { return r.Username, r.Password, nil }))
	return docker.ConfigureDefaultRegistries(
		docker.WithClient(r.client),
		docker.WithAuthorizer(auth),
		docker.WithPlainHTTP(func(string) (bool, error) { return false, nil }))
}
