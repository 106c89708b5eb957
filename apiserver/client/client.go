// Package client talks to the host API over its Unix socket. apiclient is a thin command around it,
// and tests and other programs (the system init, waiting for the API) use it directly.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// DefaultSocket is where the API listens on a Ballast host.
const DefaultSocket = "/run/api.sock"

// maxResponse bounds what the client reads from the server.
const maxResponse = 16 << 20

// Client is an API client. It is safe for concurrent use.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client for the API at socket ("" for DefaultSocket).
func New(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Error is an error answer from the server.
type Error struct {
	Status  int
	Message string
	Key     string
}

func (e *Error) Error() string { return e.Message }

// Do sends a request with an optional JSON body and returns the response body. A status of 300 or
// more is an *Error carrying the server's message.
func (c *Client) Do(ctx context.Context, method, uri string, body []byte) ([]byte, error) {
	if !strings.HasPrefix(uri, "/") {
		uri = "/" + uri
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+uri, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, uri, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s via %s: %w", method, uri, c.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, uri, err)
	}
	if resp.StatusCode >= 300 {
		var e apitypes.Error
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return b, &Error{Status: resp.StatusCode, Message: e.Error, Key: e.Key}
	}
	return b, nil
}

func (c *Client) getJSON(ctx context.Context, uri string, v any) error {
	b, err := c.Do(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: decode response: %w", uri, err)
	}
	return nil
}

// OS returns the OS description.
func (c *Client) OS(ctx context.Context) (apitypes.OS, error) {
	var v apitypes.OS
	return v, c.getJSON(ctx, "/os", &v)
}

// Settings returns the live settings.
func (c *Client) Settings(ctx context.Context) (settings.Settings, error) {
	b, err := c.Do(ctx, http.MethodGet, "/settings", nil)
	if err != nil {
		return settings.Settings{}, err
	}
	s, err := settings.DecodeJSON(bytes.NewReader(b))
	if err != nil {
		return settings.Settings{}, fmt.Errorf("GET /settings: %w", err)
	}
	return s, nil
}

// Pending returns the patch staged in the current transaction.
func (c *Client) Pending(ctx context.Context) (settings.Settings, error) {
	b, err := c.Do(ctx, http.MethodGet, "/tx", nil)
	if err != nil {
		return settings.Settings{}, err
	}
	return settings.DecodeJSON(bytes.NewReader(b))
}

// UserData returns what happened to user data on this boot.
func (c *Client) UserData(ctx context.Context) (apitypes.UserData, error) {
	var v apitypes.UserData
	return v, c.getJSON(ctx, "/userdata", &v)
}

// Patch stages a settings patch, given as a JSON object of settings keys.
func (c *Client) Patch(ctx context.Context, patch []byte) error {
	_, err := c.Do(ctx, http.MethodPatch, "/settings", patch)
	return err
}

// CommitAndApply commits the staged patch and applies the result; it returns the keys committed.
func (c *Client) CommitAndApply(ctx context.Context) ([]string, error) {
	b, err := c.Do(ctx, http.MethodPost, "/tx/commit_and_apply", nil)
	if err != nil {
		return nil, err
	}
	var v apitypes.Commit
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("POST /tx/commit_and_apply: decode response: %w", err)
	}
	return v.Changed, nil
}

// Set stages the dotted key=value pairs (see PatchFromPairs) and commits and applies them.
func (c *Client) Set(ctx context.Context, pairs []string) ([]string, error) {
	patch, err := PatchFromPairs(pairs)
	if err != nil {
		return nil, err
	}
	if err := c.Patch(ctx, patch); err != nil {
		return nil, err
	}
	return c.CommitAndApply(ctx)
}

// Get returns the part of the API's state under a dotted prefix as nested JSON, the way it is
// addressed: "settings.network" gives {"settings":{"network":{...}}}, "os" gives {"os":{...}}, and
// "" gives both. A prefix that matches nothing gives an empty object.
func (c *Client) Get(ctx context.Context, prefix string) (map[string]any, error) {
	root := map[string]any{}
	for _, top := range []string{"settings", "os"} {
		first, _, _ := strings.Cut(prefix, ".")
		if prefix != "" && first != top {
			continue
		}
		var v map[string]any
		if err := c.getJSON(ctx, "/"+top, &v); err != nil {
			return nil, err
		}
		root[top] = v
	}
	return Filter(root, prefix), nil
}

// Filter keeps the part of tree under the dotted prefix, with the path to it. Prefix segments are
// whole keys: "settings.mo" does not match "settings.motd".
func Filter(tree map[string]any, prefix string) map[string]any {
	if prefix == "" {
		return tree
	}
	key, rest, nested := strings.Cut(prefix, ".")
	v, ok := tree[key]
	if !ok {
		return map[string]any{}
	}
	if !nested {
		return map[string]any{key: v}
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return map[string]any{}
	}
	inner := Filter(sub, rest)
	if len(inner) == 0 {
		return inner
	}
	return map[string]any{key: inner}
}

// PatchFromPairs turns key=value arguments into a JSON settings patch. Keys are dotted paths and
// may start with "settings." ("motd=hi", "settings.network.hostname=h"); values are strings, which
// every setting is for now. Conflicting keys ("a=1 a.b=2") are an error naming them.
func PatchFromPairs(pairs []string) ([]byte, error) {
	if len(pairs) == 0 {
		return nil, fmt.Errorf("nothing to set: want key=value")
	}
	root := map[string]any{}
	sorted := append([]string(nil), pairs...)
	sort.Strings(sorted)
	for _, p := range sorted {
		key, val, ok := strings.Cut(p, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("%q: want key=value", p)
		}
		key = strings.TrimPrefix(key, settings.Prefix+".")
		path := strings.Split(key, ".")
		node := root
		for i, seg := range path {
			if seg == "" {
				return nil, fmt.Errorf("%q: empty key segment", p)
			}
			if i == len(path)-1 {
				if _, dup := node[seg]; dup {
					return nil, fmt.Errorf("%q: key set twice or both as a value and a table", p)
				}
				node[seg] = val
				break
			}
			child, exists := node[seg]
			if !exists {
				child = map[string]any{}
				node[seg] = child
			}
			m, ok := child.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%q: %s is set as a value and used as a table", p, strings.Join(path[:i+1], "."))
			}
			node = m
		}
	}
	return json.Marshal(root)
}
