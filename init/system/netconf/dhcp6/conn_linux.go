package dhcp6

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"golang.org/x/sys/unix"
)

// UDPConn exchanges DHCPv6 messages on one interface through a UDP socket on the client port,
// bound to the interface and open for one exchange at a time. Messages go to
// All_DHCP_Relay_Agents_and_Servers (ff02::1:2) from the interface's link-local address, which
// the kernel picks once it is no longer tentative.
type UDPConn struct {
	Interface string
}

var allServers = net.ParseIP("ff02::1:2")

// Exchange implements Conn.
func (c *UDPConn) Exchange(ctx context.Context, req *dhcpv6.Message, timeout time.Duration, match func(*dhcpv6.Message) bool) (*dhcpv6.Message, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			// Several interfaces' clients may each hold the port, each bound to its interface.
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.BindToDevice(int(fd), c.Interface)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp6", fmt.Sprintf("[::]:%d", dhcpv6.DefaultClientPort))
	if err != nil {
		return nil, fmt.Errorf("%s: DHCPv6 socket: %w", c.Interface, err)
	}
	defer pc.Close()
	dst := &net.UDPAddr{IP: allServers, Port: dhcpv6.DefaultServerPort, Zone: c.Interface}
	if _, err := pc.WriteTo(req.ToBytes(), dst); err != nil {
		return nil, fmt.Errorf("%s: send %s: %w", c.Interface, req.MessageType, err)
	}
	if err := pc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Interface, err)
	}
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, ErrNoResponse
			}
			return nil, fmt.Errorf("%s: receive: %w", c.Interface, err)
		}
		m, err := dhcpv6.MessageFromBytes(buf[:n])
		if err != nil || m.TransactionID != req.TransactionID || !match(m) {
			continue
		}
		return m, nil
	}
}
