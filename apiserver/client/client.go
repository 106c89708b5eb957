// Package client talks to the host API, over its Unix socket or, with mutual TLS, over TCP.
// apiclient is a thin command around it, and tests and other programs use it directly.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/contract"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/settings"
)

// DefaultSocket is where the API listens on a Ballast host.
const DefaultSocket = contract.APISocket

// maxResponse bounds what the client reads from the server.
const maxResponse = 16 << 20

// requestTimeout bounds a request, including a commit_and_apply waiting for restarts. Streams
// (followed logs) have no bound but their context.
const requestTimeout = 3 * time.Minute

// Client is an API client. It is safe for concurrent use.
type Client struct {
	base  string // URL the request paths are appended to
	where string // what errors name: the socket or the endpoint
	http  *http.Client
}

// New returns a client for the API on the Unix socket ("" for DefaultSocket).
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
	return &Client{base: "http://localhost", where: socket, http: &http.Client{Transport: tr}}
}

// NewRemote returns a client for the remote API at endpoint (https://host:port) with the TLS
// configuration cfg, which carries the client certificate (see LoadPKI).
func NewRemote(endpoint string, cfg *tls.Config) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("endpoint %q: want https://host:port", endpoint)
	}
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{base: "https://" + u.Host, where: u.Host, http: &http.Client{Transport: tr}}, nil
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
	return c.do(ctx, requestTimeout, method, uri, body)
}

func (c *Client) do(ctx context.Context, timeout time.Duration, method, uri string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.send(ctx, method, uri, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, uri, err)
	}
	if resp.StatusCode >= 300 {
		return b, errorFrom(resp.StatusCode, b)
	}
	return b, nil
}

// Stream sends a GET and returns the response body as it arrives, for followed logs. The stream
// ends when ctx is done or the body is closed.
func (c *Client) Stream(ctx context.Context, uri string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		return nil, errorFrom(resp.StatusCode, b)
	}
	return resp.Body, nil
}

func (c *Client) send(ctx context.Context, method, uri string, body []byte) (*http.Response, error) {
	if !strings.HasPrefix(uri, "/") {
		uri = "/" + uri
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+uri, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, uri, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s via %s: %w", method, uri, c.where, err)
	}
	return resp, nil
}

func errorFrom(status int, b []byte) error {
	var e apitypes.Error
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
	}
	return &Error{Status: status, Message: e.Error, Key: e.Key}
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

// Time returns the time service's state, the host's clock and the kernel's view of it.
func (c *Client) Time(ctx context.Context) (apitypes.Time, error) {
	var v apitypes.Time
	return v, c.getJSON(ctx, "/time", &v)
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

// Pending returns the patch staged in the default transaction.
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

// Services lists the services the system init supervises.
func (c *Client) Services(ctx context.Context) ([]apitypes.Service, error) {
	var v apitypes.Services
	return v.Services, c.getJSON(ctx, "/services", &v)
}

// Hardening returns the hardening report of the running host.
func (c *Client) Hardening(ctx context.Context) (apitypes.HardeningReport, error) {
	var v apitypes.HardeningReport
	return v, c.getJSON(ctx, "/report/hardening", &v)
}

// BootReport returns the boot report: Secure Boot, lockdown, the TPM's and the initramfs's
// record of this boot, and /local's recovery key while it waits to be acknowledged.
func (c *Client) BootReport(ctx context.Context) (apitypes.BootReport, error) {
	var v apitypes.BootReport
	return v, c.getJSON(ctx, "/report/boot", &v)
}

// AcknowledgeRecoveryKey tells the host the operator has kept /local's recovery key: the host
// deletes it and never shows it again. With none waiting it is an *Error with Status 404.
func (c *Client) AcknowledgeRecoveryKey(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodPost, "/actions/report/boot/acknowledge-recovery-key", nil)
	return err
}

// Network returns the network service's state: interfaces, addresses, routes, leases, DNS and
// the host name, with where each came from.
func (c *Client) Network(ctx context.Context) (apitypes.Network, error) {
	var v apitypes.Network
	return v, c.getJSON(ctx, "/network", &v)
}

// Reboot asks the host to reboot.
func (c *Client) Reboot(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodPost, "/actions/reboot", nil)
	return err
}

// UpdateStatus returns the update agent's status.
func (c *Client) UpdateStatus(ctx context.Context) (apitypes.UpdateStatus, error) {
	var v apitypes.UpdateStatus
	return v, c.getJSON(ctx, "/updates/status", &v)
}

// UpdateAction runs an update action (apitypes.UpdateCheck, UpdateApply, UpdateActivate or
// UpdateCancel) and returns the status it left. It waits for the action to end, up to
// apitypes.UpdateActionTimeout; the action goes on on the host if the wait is given up.
func (c *Client) UpdateAction(ctx context.Context, action string) (apitypes.UpdateStatus, error) {
	var v apitypes.UpdateStatus
	uri := "/actions/updates/" + url.PathEscape(action)
	b, err := c.do(ctx, apitypes.UpdateActionTimeout, http.MethodPost, uri, nil)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("POST %s: decode response: %w", uri, err)
	}
	return v, nil
}

// Logs returns a source's log (kernel, init or a service), earlier boots first; with follow,
// the stream stays open for what is written.
func (c *Client) Logs(ctx context.Context, service string, follow bool) (io.ReadCloser, error) {
	return c.LogTail(ctx, service, 0, follow)
}

// LogTail is Logs from the given number of lines before the end (0: from the start).
func (c *Client) LogTail(ctx context.Context, source string, lines int, follow bool) (io.ReadCloser, error) {
	q := url.Values{"service": {source}}
	if lines > 0 {
		q.Set("lines", strconv.Itoa(lines))
	}
	if follow {
		q.Set("follow", "true")
	}
	return c.Stream(ctx, "/logs?"+q.Encode())
}

// Bundle returns the host's support bundle, a gzip'd tar (apitypes.BundleIndex says what it
// holds).
func (c *Client) Bundle(ctx context.Context) (io.ReadCloser, error) {
	return c.Stream(ctx, "/logs/bundle")
}

// Patch stages a settings patch, given as a JSON object of settings keys, in the default
// transaction.
func (c *Client) Patch(ctx context.Context, patch []byte) error {
	return c.PatchTx(ctx, "", patch)
}

// PatchTx stages a patch in transaction tx ("" for the default one).
func (c *Client) PatchTx(ctx context.Context, tx string, patch []byte) error {
	_, err := c.Do(ctx, http.MethodPatch, "/settings"+txQuery(tx), patch)
	return err
}

// CommitAndApply commits the default transaction and applies the result; it returns the keys
// whose values changed.
func (c *Client) CommitAndApply(ctx context.Context) ([]string, error) {
	v, err := c.CommitAndApplyTx(ctx, "")
	return v.Changed, err
}

// CommitAndApplyTx commits transaction tx ("" for the default one) and applies the result.
func (c *Client) CommitAndApplyTx(ctx context.Context, tx string) (apitypes.Commit, error) {
	var v apitypes.Commit
	b, err := c.Do(ctx, http.MethodPost, "/tx/commit_and_apply"+txQuery(tx), nil)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("POST /tx/commit_and_apply: decode response: %w", err)
	}
	return v, nil
}

func txQuery(tx string) string {
	if tx == "" {
		return ""
	}
	return "?tx=" + url.QueryEscape(tx)
}

// Set stages the key=value pairs (see PatchFromPairs) and commits and applies them.
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

// Apply stages a whole settings document in its own transaction, so that nothing else pending is
// committed with it, then commits and applies it.
func (c *Client) Apply(ctx context.Context, s settings.Settings) (apitypes.Commit, error) {
	const tx = "apiclient-apply"
	patch, err := json.Marshal(s)
	if err != nil {
		return apitypes.Commit{}, err
	}
	// A transaction left by an apply that died halfway must not be committed along with this one.
	if _, err := c.Do(ctx, http.MethodDelete, "/tx"+txQuery(tx), nil); err != nil {
		return apitypes.Commit{}, err
	}
	if err := c.PatchTx(ctx, tx, patch); err != nil {
		return apitypes.Commit{}, err
	}
	return c.CommitAndApplyTx(ctx, tx)
}

// Get returns the part of the API's state under a dotted prefix as nested JSON, the way it is
// addressed: "settings.network" gives {"settings":{"network":{...}}}, "os" gives {"os":{...}},
// "network" the network service's state (GET /network), "updates" the update agent's (GET
// /updates/status), and "" gives os and settings. A prefix that matches nothing gives an empty
// object.
func (c *Client) Get(ctx context.Context, prefix string) (map[string]any, error) {
	get := func(uri string) (map[string]any, error) {
		var v map[string]any
		return v, c.getJSON(ctx, uri, &v)
	}
	first, _, _ := strings.Cut(prefix, ".")
	switch {
	case prefix == "":
		os, err := get("/os")
		if err != nil {
			return nil, err
		}
		s, err := get("/settings")
		if err != nil {
			return nil, err
		}
		return map[string]any{"os": os, "settings": s}, nil
	case first == "os":
		os, err := get("/os")
		if err != nil {
			return nil, err
		}
		return Filter(map[string]any{"os": os}, prefix), nil
	case first == "updates":
		u, err := get("/updates/status")
		if err != nil {
			return nil, err
		}
		return Filter(map[string]any{"updates": u}, prefix), nil
	case first == "network":
		n, err := get("/network")
		if err != nil {
			return nil, err
		}
		return Filter(map[string]any{"network": n}, prefix), nil
	case first == settings.Prefix:
		// Parsed with the model, so that quoted keys and sysctl names with dots work.
		path, err := settings.ParseKey(prefix)
		if err != nil {
			return nil, err
		}
		s, err := get("/settings")
		if err != nil {
			return nil, err
		}
		if s = settings.Select(s, [][]string{path}); len(s) == 0 {
			return map[string]any{}, nil
		}
		return map[string]any{"settings": s}, nil
	}
	return map[string]any{}, nil
}

// Filter keeps the part of tree under the dotted prefix, with the path to it. Prefix segments are
// whole keys: "os.vers" does not match "os.version".
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
// may start with "settings." ("motd=hi", "settings.network.hostname=h",
// "kernel.sysctl.net.ipv4.ip_forward=1"); each value is converted to its key's type (booleans,
// integers, JSON for lists: 'dns.name-servers=["10.0.0.2"]'). Keys the model does not know are
// passed on as text for the server to refuse with its own error. Conflicting keys ("a=1 a.b=2")
// are an error naming them.
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
		var value any = val
		path, err := settings.ParseKey(key)
		switch {
		case errors.Is(err, settings.ErrUnknownKey):
			path = append([]string{settings.Prefix}, strings.Split(strings.TrimPrefix(key, settings.Prefix+"."), ".")...)
		case err != nil:
			return nil, fmt.Errorf("%q: %w", p, err)
		default:
			if value, err = settings.ValueFromString(path, val); err != nil {
				return nil, fmt.Errorf("%q: %w", p, err)
			}
		}
		if len(path) < 2 {
			return nil, fmt.Errorf("%q: name a key under settings", p)
		}
		if err := settings.SetInTree(root, path, value); err != nil {
			return nil, fmt.Errorf("%q: %w", p, err)
		}
	}
	return json.Marshal(root)
}

// Exec starts req's command in a host container and returns the upgraded connection, which
// carries the exec stream protocol (contract.ExecFrame*): the caller sends stdin, its end and
// terminal sizes, and reads output frames up to the exit or error frame.
func (c *Client) Exec(ctx context.Context, req contract.ExecRequest) (io.ReadWriteCloser, error) {
	uri := "/exec?" + req.Query().Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+uri, nil)
	if err != nil {
		return nil, fmt.Errorf("POST /exec: %w", err)
	}
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", contract.ExecUpgrade)
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("POST /exec via %s: %w", c.where, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, errorFrom(resp.StatusCode, b)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, fmt.Errorf("POST /exec via %s: the upgraded connection is not writable", c.where)
	}
	return rwc, nil
}
