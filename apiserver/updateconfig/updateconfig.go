// Package updateconfig is what the update agent takes from the settings and the image at each
// action: the repository's URLs (the image's defaults unless settings.updates names others), the
// version lock, the waves, and an HTTP client that goes through settings.network.https-proxy and
// trusts the settings.pki bundles marked trusted besides the image's CAs.
package updateconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
)

// Config is the update agent's configuration.
type Config struct {
	MetadataBaseURL string
	TargetsBaseURL  string
	VersionLock     string // settings.LatestVersion or a version (contract.ValidateVersion)
	IgnoreWaves     bool
	Seed            int // 0 to settings.MaxUpdateSeed
	// Client makes the requests to the repository: through the proxy, with the image's CAs and
	// the trusted settings.pki bundles. It has no overall timeout (a payload takes minutes);
	// requests are bounded by their context and the transport's connection timeouts.
	Client *http.Client
}

// FromSettings makes the configuration from the live settings and the image's update policy
// (contract.Image.Updates). Without a repository to ask (no URL in either, or no trusted root
// in the image) the error wraps apitypes.ErrUpdatesNotConfigured.
func FromSettings(s settings.Settings, img contract.UpdatePolicy) (Config, error) {
	c := Config{MetadataBaseURL: img.MetadataBaseURL, TargetsBaseURL: img.TargetsBaseURL, VersionLock: settings.LatestVersion, Seed: -1}
	if u := s.Updates; u != nil {
		if u.MetadataBaseURL != nil {
			c.MetadataBaseURL = string(*u.MetadataBaseURL)
		}
		if u.TargetsBaseURL != nil {
			c.TargetsBaseURL = string(*u.TargetsBaseURL)
		}
		if u.VersionLock != nil {
			c.VersionLock = string(*u.VersionLock)
		}
		if u.IgnoreWaves != nil {
			c.IgnoreWaves = *u.IgnoreWaves
		}
		if u.Seed != nil {
			c.Seed = int(*u.Seed)
		}
	}
	if !img.HasRoot {
		return Config{}, fmt.Errorf("%w: the image carries no trusted root.json (%s)", apitypes.ErrUpdatesNotConfigured, contract.TUFRootPath)
	}
	for _, u := range []struct{ key, value string }{{"metadata-base-url", c.MetadataBaseURL}, {"targets-base-url", c.TargetsBaseURL}} {
		key := settings.Prefix + ".updates." + u.key
		if u.value == "" {
			return Config{}, fmt.Errorf("%w: %s is not set and the image has no default", apitypes.ErrUpdatesNotConfigured, key)
		}
		// The image's defaults have not been through the settings model.
		if _, err := settings.RepositoryURL(u.value).URL(); err != nil {
			return Config{}, fmt.Errorf("%w: %s: the image's default: %w", apitypes.ErrUpdatesNotConfigured, key, err)
		}
	}
	if c.Seed < 0 || c.Seed > settings.MaxUpdateSeed {
		return Config{}, fmt.Errorf("%w: %s.updates.seed is not set (the apiserver sets it at start)", apitypes.ErrUpdatesNotConfigured, settings.Prefix)
	}
	client, err := HTTPClient(s)
	if err != nil {
		return Config{}, err
	}
	c.Client = client
	return c, nil
}

// Proxy is the transport's proxy function from settings.network.https-proxy and no-proxy, for
// http and https requests alike; nil when no proxy is set. localhost, 127.0.0.1 and ::1 are
// never proxied, as the settings reference promises.
func Proxy(s settings.Settings) (func(*http.Request) (*url.URL, error), error) {
	n := s.Network
	if n == nil || n.HTTPSProxy == nil {
		return nil, nil
	}
	u, err := n.HTTPSProxy.URL()
	if err != nil {
		return nil, fmt.Errorf("settings.network.https-proxy: %w", err)
	}
	no := []string{"localhost", "127.0.0.1", "::1"}
	for _, e := range n.NoProxy {
		if !slices.Contains(no, string(e)) {
			no = append(no, string(e))
		}
	}
	f := (&httpproxy.Config{HTTPProxy: u.String(), HTTPSProxy: u.String(), NoProxy: strings.Join(no, ",")}).ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return f(r.URL) }, nil
}

// RootCAs is the image's CA bundle (the system pool) with the settings.pki bundles marked
// trusted added.
func RootCAs(s settings.Settings) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	names := make([]string, 0, len(s.PKI))
	for name := range s.PKI {
		names = append(names, string(name))
	}
	slices.Sort(names)
	for _, name := range names {
		b := s.PKI[settings.BundleName(name)]
		if b == nil || b.Data == nil || b.Trusted == nil || !*b.Trusted {
			continue
		}
		certs, err := b.Data.Certificates()
		if err != nil {
			return nil, fmt.Errorf("settings.pki.%s.data: %w", name, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// HTTPClient is the client the agent talks to the repository with.
func HTTPClient(s settings.Settings) (*http.Client, error) {
	proxy, err := Proxy(s)
	if err != nil {
		return nil, err
	}
	roots, err := RootCAs(s)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		IdleConnTimeout:       30 * time.Second,
		MaxIdleConns:          4,
	}}, nil
}
