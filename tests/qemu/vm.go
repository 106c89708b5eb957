package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

const (
	// consoleTailLines is how much console an error carries: enough to see
	// the last boot stage and its error without drowning the test output.
	consoleTailLines = 40
	// qmpConnectTimeout bounds the wait for QEMU to create its QMP socket;
	// QEMU sets chardevs up before the machine, so this is short even on TCG.
	qmpConnectTimeout = 20 * time.Second
	// maxUnixPath is sun_path's size on Linux, NUL included.
	maxUnixPath = 108
)

// VM is a running QEMU. Its methods are safe for concurrent use.
type VM struct {
	cfg     Config
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	con     *console
	stderr  *tailWriter
	log     *lockedWriter // nil without Config.LogFile
	dir     string        // private temp dir: OVMF vars copy, QMP socket
	started time.Time

	qmp     *qmpClient
	qmpSet  chan struct{} // closed once Start has finished with qmp
	sendMu  sync.Mutex
	exited  chan struct{} // closed when the QEMU process has been reaped
	done    chan struct{} // closed after exit bookkeeping (exitErr, cleanup)
	exitErr error

	mu             sync.Mutex
	shutdownReason string
}

// Start boots cfg and returns once QEMU runs and its QMP socket answers. The
// VM is killed when ctx is done or cfg.Timeout expires; call Kill (or
// Powerdown and WaitExit) to end it sooner and free its temp dir.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	cfg = cfg.Defaults()
	if cfg.Interactive {
		return nil, errors.New("qemu: Start: Interactive is for a terminal; exec QEMU with Config.Args instead")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ballast-vm-")
	if err != nil {
		return nil, fmt.Errorf("qemu: create VM temp dir: %w", err)
	}
	cleanup := []func(){func() { _ = os.RemoveAll(dir) }}
	fail := func(err error) (*VM, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}

	if cfg.OVMFVars == "" {
		cfg.OVMFVars = filepath.Join(dir, "OVMF_VARS.fd")
		if err := copyFile(cfg.OVMFVars, cfg.OVMFVarsTemplate); err != nil {
			return fail(fmt.Errorf("qemu: private UEFI variable store: %w", err))
		}
	}
	if cfg.QMPSocket == "" {
		cfg.QMPSocket = filepath.Join(dir, "qmp.sock")
	}
	if len(cfg.QMPSocket) >= maxUnixPath {
		return fail(fmt.Errorf("qemu: QMP socket path %s is longer than %d bytes (set TMPDIR shorter or Config.QMPSocket)", cfg.QMPSocket, maxUnixPath-1))
	}

	var tpm *exec.Cmd
	if cfg.TPMState != "" {
		cfg.TPMSocket = TPMSocketPath(dir)
		bin := cfg.SWTPM
		if bin == "" {
			bin = "swtpm"
		}
		tpmLog := ""
		if cfg.LogFile != "" {
			tpmLog = cfg.LogFile + ".swtpm"
		}
		if tpm, err = StartSWTPM(bin, cfg.TPMState, cfg.TPMSocket, tpmLog); err != nil {
			return fail(err)
		}
		cleanup = append(cleanup, func() { _ = tpm.Process.Kill(); _ = tpm.Wait() })
	}

	v := &VM{
		cfg:    cfg,
		dir:    dir,
		stderr: &tailWriter{max: 8 << 10},
		qmpSet: make(chan struct{}),
		exited: make(chan struct{}),
		done:   make(chan struct{}),
	}
	var sinks []io.Writer
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fail(fmt.Errorf("qemu: console log: %w", err))
		}
		cleanup = append(cleanup, func() { _ = f.Close() })
		v.log = &lockedWriter{w: f, c: f}
		sinks = append(sinks, v.log)
		fmt.Fprintf(v.log, "=== %s qemu start: %s\n", time.Now().Format(time.RFC3339), cfg.CommandLine())
	}
	if cfg.Verbose {
		sinks = append(sinks, os.Stdout)
	}
	v.con = newConsole(sinks...)

	lifeCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	cleanup = append(cleanup, cancel)
	cmd := exec.CommandContext(lifeCtx, cfg.QEMU, cfg.Args()...)
	cmd.Stdout = v.con
	if v.log != nil {
		cmd.Stderr = io.MultiWriter(v.stderr, &prefixWriter{w: v.log, prefix: "qemu stderr: ", atStart: true})
	} else {
		cmd.Stderr = v.stderr
	}
	// QEMU holds no other copies of its stdio, but bound Wait anyway so a
	// stuck pipe cannot hang Kill.
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	for _, n := range cfg.TapNICs {
		cmd.ExtraFiles = append(cmd.ExtraFiles, n.File)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(fmt.Errorf("qemu: stdin pipe: %w", err))
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("qemu: start %s: %w", cfg.QEMU, err))
	}
	v.cmd, v.stdin, v.started = cmd, stdin, time.Now()
	go v.wait(lifeCtx, cancel)
	if tpm != nil {
		// swtpm ends by itself when QEMU shuts it down; make sure it does when QEMU dies.
		go func() {
			<-v.exited
			_ = tpm.Process.Kill()
			_ = tpm.Wait()
		}()
	}

	v.qmp, err = v.connectQMP()
	close(v.qmpSet)
	if err != nil {
		_ = v.Kill()
		return nil, v.decorate(err)
	}
	return v, nil
}

// wait reaps QEMU and then tidies up, in an order that lets WaitExit callers
// see the complete console and the shutdown reason.
func (v *VM) wait(lifeCtx context.Context, cancel context.CancelFunc) {
	err := v.cmd.Wait()
	timedOut := lifeCtx.Err()
	cancel()
	close(v.exited)
	v.con.close()
	<-v.qmpSet
	if v.qmp != nil {
		// QEMU sends SHUTDOWN just before it exits; give the reader a moment
		// to deliver it before the connection goes.
		select {
		case <-v.qmp.done:
		case <-time.After(2 * time.Second):
		}
		_ = v.qmp.close()
	}
	switch {
	case err != nil && timedOut != nil:
		err = fmt.Errorf("qemu killed (%w: VM timeout %s or caller's context): %w", timedOut, v.cfg.Timeout, err)
	case err != nil:
		err = fmt.Errorf("qemu exited: %w", err)
	}
	if v.log != nil {
		status := "ok"
		if err != nil {
			status = err.Error()
		}
		fmt.Fprintf(v.log, "=== %s qemu exit after %s: %s\n", time.Now().Format(time.RFC3339), time.Since(v.started).Round(time.Millisecond), status)
		_ = v.log.Close()
	}
	_ = os.RemoveAll(v.dir)
	v.exitErr = err
	close(v.done)
}

func (v *VM) connectQMP() (*qmpClient, error) {
	deadline := time.Now().Add(qmpConnectTimeout)
	for {
		c, err := dialQMP(v.cfg.QMPSocket, v.onEvent)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("qemu: QMP did not come up within %s: %w", qmpConnectTimeout, err)
		}
		select {
		case <-v.exited:
			return nil, fmt.Errorf("qemu: exited during startup")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (v *VM) onEvent(e qmpEvent) {
	var reason string
	switch e.Name {
	case "SHUTDOWN":
		var d struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil || d.Reason == "" {
			reason = "shutdown"
		} else {
			reason = d.Reason
		}
	case "GUEST_PANICKED":
		reason = "guest-panicked"
	default:
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// The first reason is the cause; a panic is followed by its SHUTDOWN.
	if v.shutdownReason == "" {
		v.shutdownReason = reason
	}
}

// Expect waits until a console line matches re and returns the submatches
// (index 0 is the whole match). Lines are matched one at a time, so ^ and $
// anchor a line; a line that a previous Expect matched is not looked at
// again. The unterminated last line (a prompt) is matched once the output
// pauses. timeout <= 0 means DefaultExpectTimeout. It fails early if QEMU
// exits; errors carry the last console lines.
func (v *VM) Expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	if timeout <= 0 {
		timeout = DefaultExpectTimeout
	}
	s := &scanner{re: re, consume: true}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r := v.con.look(s, time.Now())
		if r.found {
			return r.sub, nil
		}
		if r.eof {
			return nil, v.consoleError(fmt.Sprintf("console ended (QEMU exited) before a line matched %q", re))
		}
		var recheck <-chan time.Time
		if r.recheck > 0 {
			recheck = time.After(r.recheck)
		}
		select {
		case <-r.changed:
		case <-recheck:
		case <-deadline.C:
			return nil, v.consoleError(fmt.Sprintf("no console line matched %q within %s", re, timeout))
		}
	}
}

// ExpectNot watches the console for d and fails if a line matches re, e.g.
// to assert that no "ballast: error" follows the ready line. Output already
// consumed by Expect is not looked at, and nothing is consumed. It returns
// early, successfully, if QEMU exits.
func (v *VM) ExpectNot(re *regexp.Regexp, d time.Duration) error {
	s := &scanner{re: re, eager: true}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r := v.con.look(s, time.Now())
		if r.found {
			return v.consoleError(fmt.Sprintf("console matched %q (%q), which it must not", re, r.sub[0]))
		}
		if r.eof {
			return nil
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			return nil
		}
	}
}

// Send writes s to the serial console, as typed keys; "\r" is Enter. QEMU
// feeds the guest UART only as fast as the guest drains it, so a whole line
// at once is safe; Send blocks if the guest stops reading and more than a
// pipe's worth (64 KiB) is pending.
func (v *VM) Send(s string) error {
	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	if _, err := io.WriteString(v.stdin, s); err != nil {
		return fmt.Errorf("qemu: send %q to the console: %w", s, err)
	}
	return nil
}

// Powerdown presses the ACPI power button (QMP system_powerdown). It only
// asks: OVMF ignores it, and a Linux guest shuts down only if userspace acts
// on the button's KEY_POWER input event (Debian kernels need the button and
// evdev modules loaded for that event to exist). Follow it with WaitExit;
// ShutdownReason is then "guest-shutdown".
func (v *VM) Powerdown() error {
	return v.decorate(v.qmp.execute("system_powerdown", false))
}

// SetLink connects (up) or disconnects a NIC's cable (QMP set_link): the guest sees its carrier
// come and go. name is a TapNIC's ID.
func (v *VM) SetLink(name string, up bool) error {
	return v.decorate(v.qmp.executeArgs("set_link", map[string]any{"name": name, "up": up}, false))
}

// Quit stops QEMU at once (QMP quit), like pulling the plug but letting QEMU
// flush its disk caches first.
func (v *VM) Quit() error {
	return v.decorate(v.qmp.execute("quit", true))
}

// Kill ends QEMU with SIGKILL and waits for the cleanup. Killing a VM that
// has already exited is not an error, so it suits a defer.
func (v *VM) Kill() error {
	select {
	case <-v.done:
		return nil
	default:
	}
	if err := v.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("qemu: kill pid %d: %w", v.cmd.Process.Pid, err)
	}
	<-v.done
	return nil
}

// WaitExit waits up to timeout for QEMU to exit and returns its exit error:
// nil for a clean exit (guest poweroff, or a reboot under -no-reboot; see
// ShutdownReason). timeout <= 0 means DefaultExpectTimeout.
func (v *VM) WaitExit(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultExpectTimeout
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-v.done:
		return v.exitErr
	case <-t.C:
		return v.consoleError(fmt.Sprintf("QEMU still running after %s", timeout))
	}
}

// ShutdownReason is QEMU's reason for the last shutdown it reported over
// QMP, e.g. "guest-shutdown" (poweroff), "guest-reset" (reboot under
// -no-reboot), "guest-panicked", "host-qmp-quit", "host-signal"; empty while
// running or when QEMU died without saying.
func (v *VM) ShutdownReason() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.shutdownReason
}

// Console returns the normalized console output so far.
func (v *VM) Console() string { return v.con.String() }

// LogFile is Config.LogFile, for failure messages.
func (v *VM) LogFile() string { return v.cfg.LogFile }

// CommandLine is the QEMU command line this VM runs.
func (v *VM) CommandLine() string { return v.cfg.CommandLine() }

// consoleError builds an error carrying everything needed to debug a boot
// from a test log: the exit status, the console tail and QEMU's stderr.
func (v *VM) consoleError(msg string) error {
	var b strings.Builder
	b.WriteString("qemu: " + msg)
	select {
	case <-v.exited:
		// The bookkeeping follows the reap within moments; wait for it so
		// the status below is filled in.
		select {
		case <-v.done:
		case <-time.After(3 * time.Second):
		}
	default:
	}
	select {
	case <-v.done:
		status := "exit status 0"
		if v.exitErr != nil {
			status = v.exitErr.Error()
		}
		if r := v.ShutdownReason(); r != "" {
			status += ", shutdown reason " + r
		}
		fmt.Fprintf(&b, "\nqemu: %s", status)
	default:
	}
	if v.cfg.LogFile != "" {
		fmt.Fprintf(&b, "\nconsole log: %s", v.cfg.LogFile)
	}
	fmt.Fprintf(&b, "\n--- last %d console lines ---\n%s", consoleTailLines, v.con.tail(consoleTailLines))
	if e := strings.TrimSpace(v.stderr.String()); e != "" {
		fmt.Fprintf(&b, "\n--- qemu stderr ---\n%s", e)
	}
	return errors.New(b.String())
}

// decorate adds QEMU's stderr to err, where the reason for most startup
// failures (bad option, locked image) is written.
func (v *VM) decorate(err error) error {
	if err == nil {
		return nil
	}
	if e := strings.TrimSpace(v.stderr.String()); e != "" {
		return fmt.Errorf("%w\n--- qemu stderr ---\n%s", err, e)
	}
	return err
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// lockedWriter serializes the console and stderr writers sharing the log.
type lockedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	c      io.Closer
	closed bool
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, os.ErrClosed
	}
	return l.w.Write(p)
}

func (l *lockedWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.c.Close()
}

// prefixWriter marks each line it writes, so QEMU's own messages stand out
// in the console log.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	atStart bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		if p.atStart {
			out.WriteString(p.prefix)
			p.atStart = false
		}
		out.WriteByte(c)
		if c == '\n' {
			p.atStart = true
		}
	}
	// The log is best effort: an error here would surface as QEMU's exit
	// error from exec.Cmd.Wait and hide the real outcome.
	_, _ = p.w.Write(out.Bytes())
	return len(b), nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
