// Package imds reads the EC2 instance metadata service, version 2 (a session token from
// PUT /latest/api/token, then GETs with it), and tells whether the machine is on EC2 at all. The
// apiserver reads user data through it on the first boot; the network service reads the host name.
package imds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Endpoint is where the metadata service answers on EC2.
const Endpoint = "http://169.254.169.254"

// tokenTTL is the lifetime asked for a session token; each Get takes a new one.
const tokenTTL = "60"

// ErrUnreachable means nothing answered at the endpoint: the host has no metadata service.
var ErrUnreachable = errors.New("no instance metadata service")

// ErrNotFound means the service has no such item (HTTP 404).
var ErrNotFound = errors.New("not in the instance metadata")

// Client asks one metadata service.
type Client struct {
	// Endpoint is the service's base URL [Endpoint].
	Endpoint string
	// Timeout bounds each Get [2s]: off EC2 the address may be routed to nobody.
	Timeout time.Duration
}

// Get returns the item at path (e.g. /latest/user-data), at most max bytes.
func (c Client) Get(ctx context.Context, path string, max int64) ([]byte, error) {
	base := strings.TrimRight(c.Endpoint, "/")
	if base == "" {
		base = Endpoint
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// No proxy: the service is link-local, and a proxy from the environment must never see the
	// token. No redirects either.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	defer client.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/latest/api/token", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", tokenTTL)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, base, err)
	}
	token, err := readBody(resp, 4096)
	if err != nil {
		return nil, fmt.Errorf("imds token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("imds token: %s", resp.Status)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-aws-ec2-metadata-token", strings.TrimSpace(string(token)))
	resp, err = client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("imds %s: %w", path, err)
	}
	data, err := readBody(resp, max)
	if err != nil {
		return nil, fmt.Errorf("imds %s: %w", path, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return data, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("imds %s: %w", path, ErrNotFound)
	}
	return nil, fmt.Errorf("imds %s: %s", path, resp.Status)
}

func readBody(resp *http.Response, max int64) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// OnEC2 tells from the firmware's description of the machine whether it is an EC2 instance, the
// way cloud-init's ds-identify does: the SMBIOS system vendor (Nitro instances), or a product or
// Xen hypervisor UUID that starts with "ec2" (Xen instances). Only then is the metadata service
// worth asking. sys is /sys, or a directory laid out like it in tests.
func OnEC2(sys string) bool {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(sys, p))
		if err != nil {
			return ""
		}
		return strings.ToLower(strings.TrimSpace(string(b)))
	}
	if strings.HasPrefix(read("class/dmi/id/sys_vendor"), "amazon ec2") {
		return true
	}
	for _, p := range []string{"class/dmi/id/product_uuid", "hypervisor/uuid"} {
		if strings.HasPrefix(read(p), "ec2") {
			return true
		}
	}
	return false
}
