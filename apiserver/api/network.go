package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"

	"github.com/ballast-os/ballast/apiserver/apitypes"
)

// maxNetworkState bounds the state file; a host with hundreds of addresses stays far below it.
const maxNetworkState = 4 << 20

// errNoNetworkState is the 503 of a host whose network service has not written its state (not
// started yet, or not in the image).
var errNoNetworkState = errors.New("the network service has not reported its state")

// getNetwork serves the network service's state file. It is decoded before it is served, so a
// client gets the documented shape or an error, never a torn or foreign file.
func (h *handler) getNetwork(w http.ResponseWriter, r *http.Request) {
	if h.cfg.NetworkState == "" {
		h.fail(w, r, http.StatusServiceUnavailable, errNoNetworkState)
		return
	}
	st, err := readNetworkState(h.cfg.NetworkState)
	if errors.Is(err, fs.ErrNotExist) {
		h.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("%w: no %s", errNoNetworkState, h.cfg.NetworkState))
		return
	}
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func readNetworkState(path string) (apitypes.Network, error) {
	var st apitypes.Network
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNetworkState+1))
	if err != nil {
		return st, fmt.Errorf("network state %s: %w", path, err)
	}
	if len(b) > maxNetworkState {
		return st, fmt.Errorf("network state %s: more than %d bytes", path, maxNetworkState)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("network state %s: %w", path, err)
	}
	return st, nil
}
