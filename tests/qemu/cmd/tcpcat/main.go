// Command tcpcat joins its stdin and stdout to a TCP connection to the address it is given. QEMU's
// guestfwd=...-cmd:tcpcat HOST:PORT runs it once per guest connection, which a guestfwd to a
// tcp: character device (one connection made when QEMU starts) cannot do.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: tcpcat HOST:PORT")
		os.Exit(2)
	}
	c, err := net.DialTimeout("tcp", os.Args[1], 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpcat:", err)
		os.Exit(1)
	}
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(c, os.Stdin)
		c.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(os.Stdout, c)
		done <- struct{}{}
	}()
	// The guest closing its side ends stdin; the server closing ends the copy to stdout.
	<-done
	<-done
}
