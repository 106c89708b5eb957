package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// IMDS reads user data from the EC2 instance metadata service, version 2: a session token from
// PUT /latest/api/token, then GET /latest/user-data with it. A host that is not on EC2 has no
// metadata service; that, and an instance without user data, is ErrNotFound.
type IMDS struct {
	// Endpoint is the service's base URL; default http://169.254.169.254.
	Endpoint string
	// Timeout bounds the whole exchange; default 2s. Off EC2 the address is usually unreachable
	// at once, but where it is routed and nobody answers every second delays the boot.
	Timeout time.Duration
}

// IMDSEndpoint is where the metadata service answers on EC2.
const IMDSEndpoint = "http://169.254.169.254"

// imdsTokenTTL is the lifetime asked for the session token; one request is all it is used for.
const imdsTokenTTL = "60"

func (m IMDS) withDefaults() IMDS {
	if m.Endpoint == "" {
		m.Endpoint = IMDSEndpoint
	}
	if m.Timeout <= 0 {
		m.Timeout = 2 * time.Second
	}
	m.Endpoint = strings.TrimRight(m.Endpoint, "/")
	return m
}

// Fetch gets the token and then the user data.
func (m IMDS) Fetch(ctx context.Context) ([]byte, string, error) {
	m = m.withDefaults()
	origin := m.Endpoint + "/latest/user-data"
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	// No proxy: the metadata service is link-local, and a proxy from the environment must never
	// see the token.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	defer client.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.Endpoint+"/latest/api/token", nil)
	if err != nil {
		return nil, origin, err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", imdsTokenTTL)
	resp, err := client.Do(req)
	if err != nil {
		// Nothing answered: this host has no metadata service.
		return nil, origin, fmt.Errorf("no instance metadata service at %s: %w", m.Endpoint, ErrNotFound)
	}
	token, err := readBody(resp, 4096)
	if err != nil {
		return nil, origin, fmt.Errorf("token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, origin, fmt.Errorf("token: %s", resp.Status)
	}

	req, err = http.NewRequestWithContext(ctx, http.MethodGet, origin, nil)
	if err != nil {
		return nil, origin, err
	}
	req.Header.Set("X-aws-ec2-metadata-token", strings.TrimSpace(string(token)))
	resp, err = client.Do(req)
	if err != nil {
		return nil, origin, fmt.Errorf("user-data: %w", err)
	}
	data, err := readBody(resp, maxRaw)
	if err != nil {
		return nil, origin, fmt.Errorf("user-data: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return data, origin, nil
	case http.StatusNotFound:
		return nil, origin, fmt.Errorf("instance has no user data: %w", ErrNotFound)
	}
	return nil, origin, fmt.Errorf("user-data: %s", resp.Status)
}

func readBody(resp *http.Response, max int64) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errors.New("larger than " + fmt.Sprint(max) + " bytes")
	}
	return b, nil
}
