// Package k8snode tells whether this machine's Kubernetes Node is registered and Ready, asking
// the API server with the kubelet's own credentials (the kubeconfig it writes after TLS
// bootstrapping). The boot health gate uses it: a node that never joins its cluster must not
// bless a new version. It speaks plain HTTPS and JSON: client-go would weigh more than the init.
package k8snode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// nodeUserPrefix is how the CN of a kubelet's client certificate starts (the Node authorizer's
// convention): system:node:<node name>.
const nodeUserPrefix = "system:node:"

// maxNodeBytes bounds a Node object's JSON; real ones are a few KiB, images lists included.
const maxNodeBytes = 4 << 20

// DefaultTimeout bounds one check when Checker.Timeout is unset.
const DefaultTimeout = 5 * time.Second

// Checker checks the Node of the kubelet whose kubeconfig it reads.
type Checker struct {
	// Kubeconfig is the kubelet's kubeconfig (contract.KubeletKubeconfig), a path of the machine.
	Kubeconfig string
	// Root is where the machine's files are ["/"]: the kubeconfig and the paths in it are the
	// machine's, looked up under Root.
	Root string
	// Timeout bounds each check, connection to answer [DefaultTimeout].
	Timeout time.Duration
}

// NotReadyError says the Node is registered but its Ready condition is not True.
type NotReadyError struct {
	Node    string
	Status  string // the Ready condition's status ("False", "Unknown"); "" when it has none
	Reason  string
	Message string
}

func (e *NotReadyError) Error() string {
	s := fmt.Sprintf("node %s not Ready", e.Node)
	if e.Status == "" {
		return s + ": no Ready condition yet"
	}
	for _, p := range []string{e.Reason, e.Message} {
		if p != "" {
			s += ": " + p
		}
	}
	if e.Reason == "" && e.Message == "" {
		s += ": Ready is " + e.Status
	}
	return s
}

// ErrNotRegistered is wrapped when the API server has no Node of the certificate's name.
var ErrNotRegistered = errors.New("not registered")

// ErrNoCredentials is wrapped when the kubeconfig or its certificate is not there yet: the kubelet
// has not finished TLS bootstrapping.
var ErrNoCredentials = errors.New("no client certificate yet")

// Check returns the node's name and nil when its Node is registered and Ready. Otherwise the
// error says why, naming the node once it is known: a *NotReadyError, ErrNotRegistered,
// ErrNoCredentials, or what failed (the kubeconfig, the certificate, the request).
func (c Checker) Check(ctx context.Context) (string, error) {
	node, body, status, err := c.get(ctx, func(node string) []string { return []string{"api", "v1", "nodes", node} }, nil, maxNodeBytes)
	switch {
	case err != nil:
		return node, err
	case status == http.StatusNotFound:
		return node, fmt.Errorf("node %s %w", node, ErrNotRegistered)
	}
	return node, nodeReady(node, body)
}

// Unsettled returns the node's name and the pods bound to it whose phase the API server does
// not yet have as ended (Succeeded or Failed), as "namespace/name (Phase)". The shutdown asks
// it once the kubelet's graceful node shutdown has stopped the pods: the kubelet reports a
// pod's end only after its cleanup, and stopping the kubelet sooner would lose that report.
func (c Checker) Unsettled(ctx context.Context) (string, []string, error) {
	node, body, status, err := c.get(ctx, func(string) []string { return []string{"api", "v1", "pods"} }, func(node string) url.Values {
		return url.Values{"fieldSelector": {"spec.nodeName=" + node}}
	}, maxPodListBytes)
	switch {
	case err != nil:
		return node, nil, err
	case status != http.StatusOK:
		return node, nil, fmt.Errorf("node %s: the pod list: %d%s", node, status, statusMessage(body))
	}
	var list struct {
		Kind  string `json:"kind"`
		Items []struct {
			Metadata struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return node, nil, fmt.Errorf("node %s: the API server's pod list: %w", node, err)
	}
	if list.Kind != "PodList" {
		return node, nil, fmt.Errorf("node %s: the API server answered with %q, not a PodList", node, list.Kind)
	}
	var left []string
	for _, p := range list.Items {
		if p.Status.Phase != "Succeeded" && p.Status.Phase != "Failed" {
			left = append(left, fmt.Sprintf("%s/%s (%s)", p.Metadata.Namespace, p.Metadata.Name, p.Status.Phase))
		}
	}
	return node, left, nil
}

// maxPodListBytes bounds the list of a node's pods: at most a few hundred, a few KiB each.
const maxPodListBytes = 16 << 20

// get makes a GET request to the API server with the kubelet's credentials, for the path (and
// query) of the node named in its certificate, and returns that name, the body of a 200 or 404
// answer and its status. Any other answer is an error.
func (c Checker) get(ctx context.Context, path func(node string) []string, query func(node string) url.Values, maxBytes int) (string, []byte, int, error) {
	cfg, err := readKubeconfig(c.Root, c.Kubeconfig)
	if err != nil {
		return "", nil, 0, err
	}
	cert, err := cfg.clientCert(c.Root)
	if err != nil {
		return "", nil, 0, err
	}
	node, err := nodeName(cert)
	if err != nil {
		return "", nil, 0, fmt.Errorf("%s: %w", cfg.certSource(), err)
	}
	base, err := url.Parse(cfg.Server)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return node, nil, 0, fmt.Errorf("%s: server %q: not an https URL", c.Kubeconfig, cfg.Server)
	}
	roots, err := cfg.rootCAs(c.Root)
	if err != nil {
		return node, nil, 0, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A transport per check: the kubelet rotates its certificate in place, and a check every
	// few seconds gains nothing from a kept connection.
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots,
			ServerName:   cfg.TLSServerName,
			MinVersion:   tls.VersionTLS12,
		},
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	defer tr.CloseIdleConnections()
	u := base.JoinPath(path(node)...)
	if query != nil {
		u.RawQuery = query(node).Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return node, nil, 0, fmt.Errorf("node %s: %w", node, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return node, nil, 0, fmt.Errorf("node %s: %w", node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
	if err != nil {
		return node, nil, 0, fmt.Errorf("node %s: GET %s: %w", node, u, err)
	}
	switch {
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound:
		return node, nil, resp.StatusCode, fmt.Errorf("node %s: GET %s: %s%s", node, u, resp.Status, statusMessage(body))
	case len(body) > maxBytes:
		return node, nil, resp.StatusCode, fmt.Errorf("node %s: GET %s: more than %d bytes", node, u, maxBytes)
	}
	return node, body, resp.StatusCode, nil
}

// nodeReady reads a Node object's Ready condition.
func nodeReady(node string, body []byte) error {
	var n struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Status struct {
			Conditions []struct {
				Type    string `json:"type"`
				Status  string `json:"status"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return fmt.Errorf("node %s: the API server's answer: %w", node, err)
	}
	if n.Kind != "Node" || n.Metadata.Name != node {
		return fmt.Errorf("node %s: the API server answered with %s %q", node, n.Kind, n.Metadata.Name)
	}
	for _, c := range n.Status.Conditions {
		if c.Type != "Ready" {
			continue
		}
		if c.Status == "True" {
			return nil
		}
		return &NotReadyError{Node: node, Status: c.Status, Reason: c.Reason, Message: c.Message}
	}
	return &NotReadyError{Node: node}
}

// statusMessage is ": <message>" of a Kubernetes Status body, "" when there is none.
func statusMessage(body []byte) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) != nil || st.Message == "" {
		return ""
	}
	return ": " + st.Message
}

// nodeName is the node a kubelet's client certificate is for.
func nodeName(cert tls.Certificate) (string, error) {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return "", err
		}
	}
	cn := leaf.Subject.CommonName
	name, ok := strings.CutPrefix(cn, nodeUserPrefix)
	if !ok || name == "" || strings.ContainsAny(name, "/ ") {
		return "", fmt.Errorf("the client certificate is for %q, not a node (%s<name>)", cn, nodeUserPrefix)
	}
	return name, nil
}
