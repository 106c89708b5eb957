package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// apiClient talks HTTP to the apiserver's Unix socket.
type apiClient struct {
	socket string
	http   *http.Client
}

func newAPIClient(socket string) *apiClient {
	return &apiClient{
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
			// PID 1 polls the socket during boot; idle connections would only pile up.
			DisableKeepAlives: true,
		}},
	}
}

// get returns the body of a 200 answer to GET path.
func (c *apiClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://apiserver"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s on %s: %w", path, c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s on %s: %w", path, c.socket, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s on %s: %s", path, c.socket, resp.Status)
	}
	return body, nil
}

// ready is the apiserver's readiness check: GET /os answers 200.
func (c *apiClient) ready(ctx context.Context) error {
	_, err := c.get(ctx, "/os")
	return err
}

// motd returns the motd setting, "" when it is not set.
func (c *apiClient) motd(ctx context.Context) (string, error) {
	body, err := c.get(ctx, "/settings")
	if err != nil {
		return "", err
	}
	return motdFrom(body)
}

// motdFrom takes settings.motd from a GET /settings answer. It accepts the settings object
// itself ({"motd": ...}) and one wrapped in {"settings": {...}}, so the system init does not
// break whichever way the apiserver frames it.
func motdFrom(body []byte) (string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("settings: %w", err)
	}
	if inner, ok := doc["settings"]; ok {
		doc = nil
		if err := json.Unmarshal(inner, &doc); err != nil {
			return "", fmt.Errorf("settings.settings: %w", err)
		}
	}
	raw, ok := doc["motd"]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var motd string
	if err := json.Unmarshal(raw, &motd); err != nil {
		return "", errors.New("settings.motd is not a string")
	}
	return motd, nil
}
