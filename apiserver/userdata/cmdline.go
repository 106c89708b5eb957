package userdata

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ballast-os/ballast/contract"
)

// CmdlineKey is the kernel command line parameter that carries user data, base64-encoded.
const CmdlineKey = contract.ParamUserData

// Cmdline reads user data from the kernel command line, ballast.userdata=<base64>: a way to
// give a few settings to a host whose boot entry can be edited but that has no other source.
type Cmdline struct {
	// Path is the command line's file; default /proc/cmdline.
	Path string
}

// Fetch decodes the parameter; its absence is ErrNotFound. The last occurrence wins, as the
// kernel has it for its own parameters.
func (c Cmdline) Fetch(context.Context) ([]byte, string, error) {
	path := c.Path
	if path == "" {
		path = "/proc/cmdline"
	}
	origin := path + ":" + CmdlineKey
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, origin, fmt.Errorf("read %s: %w", path, err)
	}
	value, found := contract.ParseCmdline(string(b)).Get(CmdlineKey)
	if !found {
		return nil, origin, fmt.Errorf("no %s= on the kernel command line: %w", CmdlineKey, ErrNotFound)
	}
	// Padding is optional: '=' is awkward in a boot loader's editor.
	data, err := decodeBase64(value)
	if err != nil {
		return nil, origin, errors.New("not base64")
	}
	if len(data) > maxRaw {
		return nil, origin, fmt.Errorf("larger than %d bytes", maxRaw)
	}
	return data, origin, nil
}
