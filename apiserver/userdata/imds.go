package userdata

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ballast-os/ballast/init/imds"
	filemarker "github.com/ballast-os/ballast/init/marker"
)

// IMDS reads user data from the EC2 instance metadata service (package init/imds). A host that
// is not on EC2 has no metadata service; that, and an instance without user data, is ErrNotFound.
type IMDS struct {
	// Endpoint is the service's base URL; default http://169.254.169.254.
	Endpoint string
	// Timeout bounds each try; default 2s. Off EC2 the address is usually unreachable at once,
	// but where it is routed and nobody answers every second delays the boot.
	Timeout time.Duration
	// Wait is how long an unreachable service is tried again before it counts as absent. On EC2
	// the service is there, but the apiserver may ask before the NIC's lease and route are in
	// place, when the address is unreachable; without a wait the instance would boot without its
	// user data. Zero tries once.
	Wait time.Duration
}

// IMDSEndpoint is where the metadata service answers on EC2.
const IMDSEndpoint = imds.Endpoint

// Fetch gets the token and then the user data.
func (m IMDS) Fetch(ctx context.Context) ([]byte, string, error) {
	base := strings.TrimRight(m.Endpoint, "/")
	if base == "" {
		base = IMDSEndpoint
	}
	origin := base + "/latest/user-data"
	data, err := m.get(ctx, base)
	switch {
	case errors.Is(err, imds.ErrUnreachable):
		return nil, origin, fmt.Errorf("no instance metadata service at %s: %w", base, ErrNotFound)
	case errors.Is(err, imds.ErrNotFound):
		return nil, origin, fmt.Errorf("instance has no user data: %w", ErrNotFound)
	case err != nil:
		return nil, origin, err
	}
	return data, origin, nil
}

// get asks until the service is reachable or m.Wait has passed (a last try at its end), pausing
// 100 ms, then twice as long each time up to 2 s.
func (m IMDS) get(ctx context.Context, base string) ([]byte, error) {
	deadline := time.Now().Add(m.Wait)
	pause := 100 * time.Millisecond
	for {
		data, err := imds.Client{Endpoint: base, Timeout: m.Timeout}.Get(ctx, "/latest/user-data", maxRaw)
		left := time.Until(deadline)
		if !errors.Is(err, imds.ErrUnreachable) || left <= 0 {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(min(pause, left)):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// OnEC2 tells whether the machine is an EC2 instance (imds.OnEC2).
func OnEC2(sys string) bool { return imds.OnEC2(sys) }

// WriteHostname asks the metadata service at endpoint for the instance's host name, again after
// a pause that doubles from first to at most max until it answers, and writes the name to path
// (contract.MetadataHostnamePath) for the network service. It returns once the name is written,
// or with ctx's error.
func WriteHostname(ctx context.Context, endpoint, path string, first, max time.Duration) error {
	pause := first
	for {
		b, err := imds.Client{Endpoint: endpoint}.Get(ctx, "/latest/meta-data/local-hostname", 255)
		if name := strings.TrimSpace(string(b)); err == nil && name != "" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("metadata host name: %w", err)
			}
			return filemarker.Set(path, []byte(name+"\n"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, max)
	}
}
