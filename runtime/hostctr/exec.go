package hostctr

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/ballast-os/ballast/contract"
)

// controlHandler serves the control socket: POST /exec.
func (m *Manager) controlHandler(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /exec", func(w http.ResponseWriter, r *http.Request) { m.serveExec(ctx, w, r) })
	return mux
}

func (m *Manager) serveExec(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	req, err := contract.ParseExecQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), contract.ExecUpgrade) {
		http.Error(w, "exec needs Upgrade: "+contract.ExecUpgrade, http.StatusUpgradeRequired)
		return
	}
	m.mu.Lock()
	inst := m.running[req.Service]
	m.mu.Unlock()
	var task containerd.Task
	if inst != nil {
		task = inst.running()
	}
	if task == nil {
		http.Error(w, fmt.Sprintf("host container %q is not running", req.Service), http.StatusNotFound)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", contract.ExecUpgrade)
	if err := brw.Flush(); err != nil {
		return
	}
	fw := &frameWriter{w: conn}
	code, err := m.exec(ctx, task, req, brw.Reader, fw)
	if err != nil {
		fw.frame(contract.ExecFrameError, []byte(err.Error()))
		return
	}
	fw.frame(contract.ExecFrameExit, []byte(strconv.Itoa(int(code))))
}

// exec runs req's command in the task's container with the container's own process settings
// (user, capabilities, seccomp, label), its stdio carried in frames over the connection.
func (m *Manager) exec(ctx context.Context, task containerd.Task, req contract.ExecRequest, in *bufio.Reader, out *frameWriter) (uint32, error) {
	ctr, err := m.client.LoadContainer(ctx, task.ID())
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	s, err := ctr.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	p := *s.Process
	p.Args = req.Command
	p.Terminal = req.TTY
	p.Env = append(append([]string(nil), p.Env...), req.Env...)
	if req.TTY {
		p.Env = append(p.Env, "TERM=xterm")
	}
	p.ConsoleSize = nil
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	opts := []cio.Opt{cio.WithStreams(stdinR, out.stream(contract.ExecFrameStdout), out.stream(contract.ExecFrameStderr))}
	if req.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	var idb [6]byte
	rand.Read(idb[:])
	id := "exec-" + hex.EncodeToString(idb[:])
	proc, err := task.Exec(ctx, id, &p, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	statusC, err := proc.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec: %w", err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec: %s: %w", req.Command[0], err)
	}
	if req.TTY && req.Rows > 0 && req.Cols > 0 {
		proc.Resize(ctx, uint32(req.Cols), uint32(req.Rows))
	}
	// The client's frames: stdin, its end, terminal sizes. A client that goes away ends stdin.
	go func() {
		defer stdinW.Close()
		for {
			typ, payload, err := contract.ReadFrame(in)
			if err != nil {
				return
			}
			switch typ {
			case contract.ExecFrameStdin:
				if _, err := stdinW.Write(payload); err != nil {
					return
				}
			case contract.ExecFrameEOF:
				stdinW.Close()
				proc.CloseIO(ctx, containerd.WithStdinCloser)
			case contract.ExecFrameResize:
				var rows, cols uint32
				if _, err := fmt.Sscanf(string(payload), "%d %d", &rows, &cols); err == nil {
					proc.Resize(ctx, cols, rows)
				}
			}
		}
	}()
	st := <-statusC
	// All output is sent before the exit frame.
	proc.IO().Wait()
	code, _, err := st.Result()
	if err != nil {
		return 0, fmt.Errorf("exec: wait: %w", err)
	}
	return code, nil
}

// frameWriter writes frames; stdout and stderr are copied in goroutines of their own.
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) frame(typ byte, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return contract.WriteFrame(f.w, typ, payload)
}

func (f *frameWriter) stream(typ byte) io.Writer { return streamWriter{f, typ} }

type streamWriter struct {
	f   *frameWriter
	typ byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += contract.ExecMaxFrameSize {
		end := min(off+contract.ExecMaxFrameSize, len(p))
		if err := s.f.frame(s.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}
