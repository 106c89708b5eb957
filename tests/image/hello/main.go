// Command hello is the host containers' test program: it says who and where it is, what user
// data it was given and whether it reaches the API socket, then sleeps, or exits with the
// status its arguments ask for ("exit N"). "kernel" prints, instead, what kernel it sees (uname,
// /proc/version, the kernel log's first line: what tells a gVisor sandbox from the host's
// kernel) and exits.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "kernel" {
		kernel()
		return
	}
	host, _ := os.Hostname()
	ud, err := os.ReadFile("/.ballast/user-data")
	udText := fmt.Sprintf("%q", ud)
	if err != nil {
		udText = "none (" + err.Error() + ")"
	}
	fmt.Printf("hello: host=%s uid=%d user-data=%s api=%s\n", host, os.Getuid(), udText, api())
	fmt.Fprintln(os.Stderr, "hello: a line on stderr")
	if len(os.Args) == 3 && os.Args[1] == "exit" {
		code, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "hello: exit wants a number")
			os.Exit(2)
		}
		os.Exit(code)
	}
	for {
		time.Sleep(time.Hour)
	}
}

// api says whether GET /os answers on the API socket.
func api() string {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", "/run/api.sock")
		}}}
	resp, err := c.Get("http://localhost/os")
	if err != nil {
		return "unreachable"
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return "status-" + strconv.Itoa(resp.StatusCode)
}

// kernel prints one line each: the release uname reports, /proc/version's first line, and the
// kernel log's first line (syslog(2), which a container without CAP_SYSLOG is refused on a
// real kernel and which gVisor answers with its own boot messages).
func kernel() {
	var u unix.Utsname
	release := "error"
	if err := unix.Uname(&u); err == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	fmt.Printf("kernel: release=%s\n", release)
	version, err := os.ReadFile("/proc/version")
	if err != nil {
		fmt.Printf("kernel: version=error %v\n", err)
	} else {
		fmt.Printf("kernel: version=%s\n", firstLine(string(version)))
	}
	buf := make([]byte, 64<<10)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		fmt.Printf("kernel: log=error %v\n", err)
	} else {
		fmt.Printf("kernel: log=%s\n", firstLine(string(buf[:n])))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
