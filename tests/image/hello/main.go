// Command hello is the host containers' test program: it says who and where it is, what user
// data it was given and whether it reaches the API socket, then sleeps, or exits with the
// status its arguments ask for ("exit N").
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
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
