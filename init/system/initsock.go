package system

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/system/supervise"
)

// serveInitSocket listens on contract.InitSocket (mode 0600, a stale socket removed first) and answers
// the protocol there until ctx is done. It does not block; failures go to the console.
func (i *Init) serveInitSocket(ctx context.Context) {
	if i.sup == nil {
		return
	}
	ln, err := listenUnix(i.path(contract.InitSocket))
	if err != nil {
		i.console.Errorf("init socket: %v", err)
		return
	}
	h := &initHandler{sup: i.sup, reboot: func() {
		select {
		case i.requests <- shutdownRequest{Reboot, "init socket"}:
		default: // a shutdown is requested already
		}
	}}
	go func() {
		if err := contract.ServeInit(ctx, ln, h); err != nil {
			i.console.Errorf("%v", err)
		}
	}()
}

// listenUnix listens on a Unix socket at path that only root can use. The socket is made under
// a temporary name and renamed once it has mode 0600, so no one can connect in between.
func listenUnix(path string) (net.Listener, error) {
	tmp := path + ".new"
	for _, p := range []string{path, tmp} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	return ln, nil
}

// initHandler answers the init socket's requests from the supervisor.
type initHandler struct {
	sup    *supervise.Supervisor
	reboot func() // asks the init's main loop for a reboot; must not block
}

var _ contract.InitHandler = (*initHandler)(nil)

// recoverTo turns a panic into *err: Serve runs handlers in their own goroutines, where a panic
// would end PID 1.
func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("init: internal error: %v", r)
	}
}

func (h *initHandler) Services(ctx context.Context) (svcs []contract.ServiceStatus, err error) {
	defer recoverTo(&err)
	for _, st := range h.sup.Statuses() {
		s := contract.ServiceStatus{ID: st.ID, State: st.State.String(), Pid: st.Pid, Restarts: st.Restarts,
			LastExit: st.LastExit}
		if st.Err != nil {
			s.Error = st.Err.Error()
		}
		svcs = append(svcs, s)
	}
	return svcs, nil
}

func (h *initHandler) Restart(ctx context.Context, ids ...string) (err error) {
	defer recoverTo(&err)
	known := map[string]bool{}
	for _, st := range h.sup.Statuses() {
		known[st.ID] = true
	}
	for _, id := range ids {
		if !known[id] {
			return fmt.Errorf("unknown service %q", id)
		}
	}
	for _, id := range ids {
		if err := h.sup.Restart(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (h *initHandler) Reboot(ctx context.Context) (err error) {
	defer recoverTo(&err)
	h.reboot()
	return nil
}
