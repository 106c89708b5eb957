// Package images gets the image a container runs into containerd's store: pulled from a registry
// (TLS with extra CAs, credentials, mirrors, a proxy) or imported from an archive on the host
// (an OCI image layout tarball or a `docker save` tarball), then unpacked for the snapshotter.
// A stored image is used when the registry cannot be reached or the archive is gone, so a host
// that got its image once boots without either.
package images

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"golang.org/x/net/http/httpproxy"

	"github.com/ballast-os/ballast/contract"
)

// ArchivePrefix starts a source that is an archive on the host.
const ArchivePrefix = "oci-archive:"

// Labels an imported image carries.
const (
	labelSource = "os.ballast.source"         // the source it came from
	labelDigest = "os.ballast.archive.sha256" // the archive's digest, to import a changed archive again
)

// Snapshotter is the snapshotter images are unpacked for.
const Snapshotter = "overlayfs"

// Getter gets images.
type Getter struct {
	Client   *containerd.Client
	Registry contract.RegistryConfig
	Proxy    string   // proxy URL for registry requests; "" for none
	NoProxy  []string // hosts reached without it
	// BeforeImport, when set, is waited for before an archive is opened.
	BeforeImport func(context.Context) error
	// Logf reports what is done (a pull, an import, a fallback to the stored image).
	Logf func(format string, args ...any)
}

// Get returns the image of source, unpacked.
func (g *Getter) Get(ctx context.Context, source string) (containerd.Image, error) {
	if path, ok := strings.CutPrefix(source, ArchivePrefix); ok {
		return g.importArchive(ctx, source, path)
	}
	return g.pull(ctx, source)
}

func (g *Getter) logf(format string, args ...any) {
	if g.Logf != nil {
		g.Logf(format, args...)
	}
}

// ArchiveImageName is the name an archive's image is stored under: it does not depend on the
// names inside the archive, so the container finds its image on a later boot without it.
func ArchiveImageName(path string) string {
	sum := sha256.Sum256([]byte(path))
	return "import.ballast.local/archive/" + hex.EncodeToString(sum[:8]) + ":latest"
}

func (g *Getter) importArchive(ctx context.Context, source, path string) (containerd.Image, error) {
	if g.BeforeImport != nil {
		if err := g.BeforeImport(ctx); err != nil {
			return nil, fmt.Errorf("images: %s: %w", source, err)
		}
	}
	name := ArchiveImageName(path)
	stored, storedErr := g.Client.GetImage(ctx, name)
	f, err := os.Open(path)
	if err != nil {
		if storedErr == nil {
			g.logf("%s: %v; using the image imported before", source, err)
			return stored, g.unpack(ctx, stored)
		}
		return nil, fmt.Errorf("images: %s: %w", source, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("images: %s: %w", source, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if storedErr == nil && stored.Labels()[labelDigest] == sum {
		return stored, g.unpack(ctx, stored)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("images: %s: %w", source, err)
	}
	start := time.Now()
	// The archive's own names are dropped: an image is known by its source only, so two
	// archives that both call themselves "latest" do not replace each other.
	imgs, err := g.Client.Import(ctx, f,
		containerd.WithIndexName(name),
		containerd.WithImageRefTranslator(func(string) string { return "" }),
		containerd.WithSkipDigestRef(func(string) bool { return true }),
		containerd.WithImportPlatform(platforms.Default()),
		containerd.WithImageLabels(map[string]string{labelSource: source, labelDigest: sum}),
	)
	if err != nil {
		return nil, fmt.Errorf("images: import %s: %w", source, err)
	}
	var img images.Image
	for _, i := range imgs {
		if i.Name == name {
			img = i
		}
	}
	if img.Name == "" {
		return nil, fmt.Errorf("images: import %s: the archive holds no image", source)
	}
	ci := containerd.NewImageWithPlatform(g.Client, img, platforms.Default())
	if err := g.unpack(ctx, ci); err != nil {
		return nil, fmt.Errorf("images: import %s: %w", source, err)
	}
	g.logf("%s: imported %s in %v", source, img.Target.Digest, time.Since(start).Round(time.Millisecond))
	return ci, nil
}

func (g *Getter) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, Snapshotter)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, Snapshotter); err != nil {
		return fmt.Errorf("unpack %s: %w", img.Name(), err)
	}
	return nil
}

func (g *Getter) pull(ctx context.Context, ref string) (containerd.Image, error) {
	hosts, err := g.Hosts()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	img, err := g.Client.Pull(ctx, ref, containerd.WithResolver(resolver), containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(Snapshotter), containerd.WithPlatformMatcher(platforms.Default()))
	if err == nil {
		g.logf("%s: pulled %s in %v", ref, img.Target().Digest, time.Since(start).Round(time.Millisecond))
		return img, nil
	}
	// An image pulled on an earlier boot runs when the registry cannot be reached now.
	name := ref
	if n, nerr := reference.ParseDockerRef(ref); nerr == nil {
		name = n.String()
	}
	stored, gerr := g.Client.GetImage(ctx, name)
	if gerr != nil {
		if !errdefs.IsNotFound(gerr) {
			err = errors.Join(err, gerr)
		}
		return nil, fmt.Errorf("images: pull %s: %w", ref, err)
	}
	g.logf("%s: pull failed (%v); using the image pulled before", ref, err)
	return stored, g.unpack(ctx, stored)
}

// Hosts configures each registry host: its mirrors first (pull and resolve only), then the
// registry itself, all with the extra CAs, the proxy and the credentials for that host.
func (g *Getter) Hosts() (docker.RegistryHosts, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	for i, pem := range g.Registry.CAs {
		if !roots.AppendCertsFromPEM([]byte(pem)) {
			return nil, fmt.Errorf("images: registry CA %d: no PEM certificate", i+1)
		}
	}
	proxy, err := g.proxyFunc()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: 5 * time.Second,
	}
	client := &http.Client{Transport: tr}
	creds := func(host string) (string, string, error) {
		c, ok := g.Registry.Credentials[host]
		if !ok && host == "registry-1.docker.io" {
			c, ok = g.Registry.Credentials["docker.io"]
		}
		if !ok {
			return "", "", nil
		}
		return c.Username, c.Password, nil
	}
	auth := docker.NewDockerAuthorizer(docker.WithAuthClient(client), docker.WithAuthCreds(creds))
	return func(host string) ([]docker.RegistryHost, error) {
		var out []docker.RegistryHost
		mirrors := g.Registry.Mirrors[host]
		if len(mirrors) == 0 {
			mirrors = g.Registry.Mirrors["*"]
		}
		for _, m := range mirrors {
			u, err := url.Parse(m)
			if err != nil {
				return nil, fmt.Errorf("images: mirror %q of %s: %w", m, host, err)
			}
			path := strings.TrimSuffix(u.Path, "/")
			if !strings.HasSuffix(path, "/v2") {
				path += "/v2"
			}
			out = append(out, docker.RegistryHost{Client: client, Authorizer: auth, Host: u.Host, Scheme: u.Scheme,
				Path: path, Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve})
		}
		target := host
		if host == "docker.io" {
			target = "registry-1.docker.io"
		}
		out = append(out, docker.RegistryHost{Client: client, Authorizer: auth, Host: target, Scheme: "https",
			Path: "/v2", Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush})
		return out, nil
	}, nil
}

// proxyFunc is the transport's proxy from the configuration (not the environment: the settings
// are what the operator changes, and the manager sees a change without a restart).
func (g *Getter) proxyFunc() (func(*http.Request) (*url.URL, error), error) {
	if g.Proxy == "" {
		return nil, nil
	}
	cfg := httpproxy.Config{HTTPSProxy: g.Proxy, HTTPProxy: g.Proxy, NoProxy: strings.Join(g.NoProxy, ",")}
	f := cfg.ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return f(r.URL) }, nil
}
