package report

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/mountinfo"
)

// maxListed bounds the findings a check names in its observed value.
const maxListed = 8

// interpreters: no shell or interpreter (contract.IsInterpreter) on the root filesystem. Only the
// root is walked: /local, /etc and the other mounts are not part of the image.
func (r *Reporter) interpreters(mounts []mountinfo.Mount, img contract.Image, imgErr error) check {
	c := check{ID: "no-interpreters", Title: "no shell or interpreter on the root filesystem", Expected: "none"}
	r.interpOnce.Do(func() { r.interp, r.interpErr = r.findInterpreters(mounts) })
	if r.interpErr != nil {
		return fail(c, "", r.interpErr.Error())
	}
	if len(r.interp) == 0 {
		return pass(c, "none")
	}
	observed := strings.Join(r.interp[:min(len(r.interp), maxListed)], ", ")
	if len(r.interp) > maxListed {
		observed += fmt.Sprintf(" and %d more", len(r.interp)-maxListed)
	}
	if imgErr == nil && img.Dev {
		return expectedFail(c, observed, "dev variant: its console shell (busybox) is part of the image; production variants refuse any shell or interpreter at build time")
	}
	return fail(c, observed, "a production image holds a shell or interpreter")
}

func (r *Reporter) findInterpreters(mounts []mountinfo.Mount) ([]string, error) {
	other := map[string]bool{}
	for _, m := range mounts {
		if m.MountPoint != "/" {
			other[m.MountPoint] = true
		}
	}
	var found []string
	err := filepath.WalkDir(r.src.Root, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(r.src.Root, p)
		abs := "/" + filepath.ToSlash(rel)
		if rel == "." {
			abs = "/"
		}
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			if other[abs] {
				return filepath.SkipDir
			}
			return nil
		}
		if contract.IsInterpreter(d.Name()) {
			found = append(found, abs)
		}
		return nil
	})
	slices.Sort(found)
	return found, err
}

// remoteAPI: the remote API's live listener refuses a TLS client without a certificate. The check
// connects as such a client; TLS 1.3 clients learn of the refusal on their first read.
func remoteAPI(ctx context.Context, addr net.Addr) check {
	c := check{ID: "remote-api-client-auth", Title: "the remote API serves only clients with a certificate",
		Expected: "off, or a connection without a client certificate refused in the TLS handshake"}
	if addr == nil {
		return pass(c, "remote API off")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return fail(c, addr.String(), "not a TCP listener")
	}
	target := &net.TCPAddr{IP: tcp.IP, Port: tcp.Port}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		target.IP = net.IPv4(127, 0, 0, 1)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		// The probe is the untrusted client: it does not authenticate the server, it only sees
		// whether the server serves it.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
	}}
	conn, err := d.DialContext(ctx, "tcp", target.String())
	observed := fmt.Sprintf("%s: ", addr)
	if err != nil {
		if isAlert(err) {
			return pass(c, observed+"refused: "+err.Error())
		}
		return fail(c, observed+err.Error(), "could not reach the listener to probe it")
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	_, err = conn.Write([]byte("GET /os HTTP/1.1\r\nHost: ballast\r\nConnection: close\r\n\r\n"))
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
	}
	switch {
	case isAlert(err):
		return pass(c, observed+"refused: "+err.Error())
	case err == nil:
		return fail(c, observed+"answered", "served a client without a certificate")
	}
	return fail(c, observed+err.Error(), "neither served nor refused in the TLS handshake")
}

// isAlert reports whether err is a TLS alert the server sent.
func isAlert(err error) bool {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// socket is one listening socket from /proc/net.
type socket struct {
	proto string
	ip    net.IP
	port  int
}

func (s socket) String() string {
	return fmt.Sprintf("%s %s", s.proto, net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)))
}

// listeners: every listening socket of the host's network namespace is declared: in
// contract.DeclaredListeners, or the remote API's port while settings enable it.
func (r *Reporter) listeners(s settings.Settings) check {
	c := check{ID: "listeners", Title: "no listening socket beyond the declared ones"}
	declared := append(contract.DeclaredListeners(), r.src.Listeners...)
	if rem := remoteSettings(s); rem != nil && rem.Enabled != nil && *rem.Enabled && rem.Listen != nil {
		if _, p, err := net.SplitHostPort(string(*rem.Listen)); err == nil {
			if port, err := strconv.Atoi(p); err == nil {
				declared = append(declared, contract.Listener{Proto: "tcp", Port: port, Who: "remote API"},
					contract.Listener{Proto: "tcp6", Port: port, Who: "remote API"})
			}
		}
	}
	var want []string
	for _, d := range declared {
		want = append(want, fmt.Sprintf("%s/%d (%s)", d.Proto, d.Port, d.Who))
	}
	c.Expected = "only " + strings.Join(want, ", ")
	var all, extra []string
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		socks, err := readListening(r.path("/proc/net/"+proto), proto)
		if err != nil {
			return fail(c, "", err.Error())
		}
		for _, sk := range socks {
			all = append(all, sk.String())
			if !slices.ContainsFunc(declared, func(d contract.Listener) bool { return d.Proto == sk.proto && d.Port == sk.port }) {
				extra = append(extra, sk.String())
			}
		}
	}
	observed := "none"
	if len(all) > 0 {
		observed = strings.Join(all, ", ")
	}
	if len(extra) > 0 {
		return fail(c, observed, "undeclared: "+strings.Join(extra, ", "))
	}
	return pass(c, observed)
}

func remoteSettings(s settings.Settings) *settings.RemoteAPI {
	if s.API == nil {
		return nil
	}
	return s.API.Remote
}

// Socket states in /proc/net/{tcp,udp}{,6}: TCP_LISTEN, and TCP_CLOSE, which for UDP is a socket
// bound but not connected, i.e. one that takes datagrams from anyone.
const (
	stateListen = "0A"
	stateClose  = "07"
)

// readListening parses one /proc/net table ("sl local_address rem_address st ...") for its
// listening sockets.
func readListening(path, proto string) ([]socket, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no IPv6 in this kernel
	}
	if err != nil {
		return nil, fmt.Errorf("listening sockets: %w", err)
	}
	defer f.Close()
	want := stateListen
	if strings.HasPrefix(proto, "udp") {
		want = stateClose
	}
	var out []socket
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if n == 1 || len(fields) < 4 || fields[3] != want {
			continue
		}
		ip, port, err := parseHexAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, n, err)
		}
		if port == 0 {
			continue
		}
		out = append(out, socket{proto: proto, ip: ip, port: port})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// parseHexAddr reads "0100007F:1F90": the address as the kernel holds it in 32-bit words in host
// (little-endian) order, then the port in hex.
func parseHexAddr(s string) (net.IP, int, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("address %q: port: %w", s, err)
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, 0, fmt.Errorf("address %q: not 4 or 16 hex bytes", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), int(port), nil
}
