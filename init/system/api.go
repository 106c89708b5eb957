package system

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// apiClient asks the apiserver, over its Unix socket, the one thing PID 1 needs from it: whether it
// answers. It speaks just enough HTTP/1.0 for that by hand: net/http and the TLS stack it brings
// would triple the size of PID 1, which is paged in through dm-verity on every boot.
type apiClient struct {
	socket string
}

func newAPIClient(socket string) *apiClient { return &apiClient{socket: socket} }

// maxAnswer bounds what get reads.
const maxAnswer = 1 << 20

// get sends GET path and returns the status code and body of the answer.
func (c *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s on %s: %w", path, c.socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	// HTTP/1.0: the server closes the connection after its answer, which ends the body.
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: apiserver\r\n\r\n", path); err != nil {
		return 0, nil, fmt.Errorf("GET %s on %s: %w", path, c.socket, err)
	}
	br := bufio.NewReader(io.LimitReader(conn, maxAnswer+64<<10))
	status, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s on %s: %w", path, c.socket, err)
	}
	f := strings.Fields(status)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0, nil, fmt.Errorf("GET %s on %s: not an HTTP answer: %q", path, c.socket, status)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s on %s: status %q", path, c.socket, f[1])
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("GET %s on %s: headers: %w", path, c.socket, err)
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	body, err := io.ReadAll(io.LimitReader(br, maxAnswer))
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s on %s: %w", path, c.socket, err)
	}
	return code, body, nil
}

// ready is the apiserver's readiness check: GET /os answers 200.
func (c *apiClient) ready(ctx context.Context) error {
	code, _, err := c.get(ctx, "/os")
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("GET /os on %s: status %d", c.socket, code)
	}
	return nil
}
