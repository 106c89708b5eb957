// Package initclienttest gives the API's tests a system init to talk to: a contract.InitHandler
// they write, served on a private socket for the length of the test.
package initclienttest

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/ballast-os/ballast/apiserver/initclient"
	"github.com/ballast-os/ballast/contract"
)

// Start serves h on a socket in a temporary directory until the test ends, and returns a client
// of it that reads the host logs from logDir (and its Files.Volatile, a directory of its own).
func Start(t testing.TB, h contract.InitHandler, logDir string) *initclient.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "init.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- contract.ServeInit(ctx, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving the test init: %v", err)
		}
	})
	return initclient.New(sock, logDir, filepath.Join(t.TempDir(), "volatile"))
}
