package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

type peerKey struct{}

// peer is who is on the other end of a Unix socket connection, as the kernel says.
type peer struct {
	cred *unix.Ucred
	err  error
}

// connContext records the peer credentials (SO_PEERCRED) of a Unix socket connection in its
// requests' context. The kernel takes them at connect(2), so they cannot be forged by the peer.
func connContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, peerKey{}, peer{err: errors.New("not a Unix socket connection")})
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return context.WithValue(ctx, peerKey{}, peer{err: err})
	}
	var p peer
	if err := raw.Control(func(fd uintptr) {
		p.cred, p.err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		p.err = err
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// requireUID serves only peers whose uid allowed accepts; the rest get 403.
func requireUID(h http.Handler, allowed func(uid uint32) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		switch {
		case p.cred == nil:
			err := p.err
			if err == nil {
				err = errors.New("no peer credentials")
			}
			writeJSON(w, http.StatusForbidden, apitypes.Error{Error: fmt.Sprintf("forbidden: %v", err)})
		case !allowed(p.cred.Uid):
			writeJSON(w, http.StatusForbidden, apitypes.Error{Error: fmt.Sprintf("forbidden: uid %d may not use the API", p.cred.Uid)})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// RootOnly allows uid 0, the host's administrator; the default of UnixServer.
func RootOnly(uid uint32) bool { return uid == 0 }

// UnixServer returns a server for the Unix socket that serves only peers whose uid allowed
// accepts (nil: RootOnly), checked with SO_PEERCRED.
func UnixServer(h http.Handler, allowed func(uid uint32) bool, log *slog.Logger) *http.Server {
	if allowed == nil {
		allowed = RootOnly
	}
	srv := NewServer(requireUID(h, allowed), log)
	srv.ConnContext = connContext
	return srv
}

// TLSConfig returns the remote API's TLS configuration: TLS 1.3 only, and a client certificate
// that chains to one of clientCA's certificates is required. All arguments are PEM.
func TLSConfig(serverCert, serverKey, clientCA []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCA) {
		return nil, errors.New("client CA: no certificate")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"http/1.1"},
	}, nil
}

// ListenTLS listens on the TCP address addr and wraps the listener in TLS with cfg: nothing on
// it is ever plaintext.
func ListenTLS(addr string, cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return tls.NewListener(ln, cfg), nil
}
