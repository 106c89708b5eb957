package dhcp4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// RawConn exchanges DHCP messages through a packet socket on one interface, which works before
// the interface has an address and sees the replies however a server addresses them (unicast to
// an address the host does not have yet, or broadcast). The socket is open for the length of an
// exchange only, so an idle client costs the kernel nothing.
type RawConn struct {
	Interface *net.Interface // Index, Name and HardwareAddr
}

// Ports of DHCPv4.
const (
	clientPort = 68
	serverPort = 67
)

// udpToClientPort keeps only unfragmented UDP datagrams to port 68, so the socket does not get a
// copy of all the interface's traffic while it waits. Offsets are from the IP header (a
// SOCK_DGRAM packet socket has no link header).
var udpToClientPort = func() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 9, Size: 1},                                      // protocol
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.IPPROTO_UDP, SkipTrue: 6}, // not UDP: drop
		bpf.LoadAbsolute{Off: 6, Size: 2},                                      // flags and fragment offset
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 4},            // a later fragment: drop
		bpf.LoadMemShift{Off: 0},                                               // X = header length
		bpf.LoadIndirect{Off: 2, Size: 2},                                      // UDP destination port
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: clientPort, SkipTrue: 1},
		bpf.RetConstant{Val: 65535},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(fmt.Sprintf("dhcp4: the socket filter does not assemble: %v", err)) // fixed at build time
	}
	return prog
}()

// Exchange implements Conn.
func (c *RawConn) Exchange(ctx context.Context, req *dhcpv4.DHCPv4, src, dst netip.Addr, timeout time.Duration, match func(*dhcpv4.DHCPv4) bool) (*dhcpv4.DHCPv4, error) {
	pc, err := packet.Listen(c.Interface, packet.Datagram, unix.ETH_P_IP, &packet.Config{Filter: udpToClientPort})
	if err != nil {
		return nil, fmt.Errorf("%s: packet socket: %w", c.Interface.Name, err)
	}
	defer pc.Close()
	frame := ipv4UDP(src, dst, clientPort, serverPort, req.ToBytes())
	// The frame goes to the link's broadcast address: the server's hardware address is not known
	// without ARP, and a server takes a broadcast frame for its IP address as well.
	if _, err := pc.WriteTo(frame, &packet.Addr{HardwareAddr: layerBroadcast}); err != nil {
		return nil, fmt.Errorf("%s: send %s: %w", c.Interface.Name, req.MessageType(), err)
	}
	deadline := time.Now().Add(timeout)
	if err := pc.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Interface.Name, err)
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
			return nil, fmt.Errorf("%s: receive: %w", c.Interface.Name, err)
		}
		payload, ok := udpPayload(buf[:n], clientPort)
		if !ok {
			continue
		}
		m, err := dhcpv4.FromBytes(payload)
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != req.TransactionID ||
			!bytes.Equal(m.ClientHWAddr, req.ClientHWAddr) || !match(m) {
			continue
		}
		return m, nil
	}
}

var layerBroadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ipv4UDP wraps payload in UDP and IPv4 headers.
func ipv4UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	const ipLen, udpLen = 20, 8
	b := make([]byte, ipLen+udpLen+len(payload))
	ip := b[:ipLen]
	ip[0] = 0x45 // version 4, 5 words of header
	ip[1] = 0x10 // TOS: low delay, as DHCP clients send
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	udp := b[ipLen:]
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen+len(payload)))
	copy(udp[udpLen:], payload)
	// The pseudo-header: addresses, protocol and UDP length.
	var pseudo uint32
	for i := 0; i < 4; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(s[i:])) + uint32(binary.BigEndian.Uint16(d[i:]))
	}
	pseudo += unix.IPPROTO_UDP + uint32(len(udp))
	sum := checksum(udp, pseudo)
	if sum == 0 {
		sum = 0xffff // 0 means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	return b
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udpPayload returns the payload of an IPv4 UDP datagram to port, and whether pkt is one.
func udpPayload(pkt []byte, port uint16) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	hl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if hl < 20 || total < hl+8 || total > len(pkt) {
		return nil, false
	}
	udp := pkt[hl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if binary.BigEndian.Uint16(udp[2:]) != port || ulen < 8 || ulen > len(udp) {
		return nil, false
	}
	return udp[8:ulen], true
}
