package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/ballast-os/ballast/apiserver/client"
	"github.com/ballast-os/ballast/contract"
)

// exitCode is the exit status of a command run by exec: apiclient exits with it.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// execCmd runs `exec NAME -- CMD...` with a terminal when stdin is one: raw mode, the window size
// and its changes passed on.
func execCmd(ctx context.Context, c *client.Client, args []string, stdin io.Reader, out io.Writer) error {
	if len(args) > 0 && args[0] == "--" {
		return fmt.Errorf("%w: exec NAME -- COMMAND...", errUsage)
	}
	if len(args) < 2 {
		return fmt.Errorf("%w: exec NAME -- COMMAND...", errUsage)
	}
	name, cmd := args[0], args[1:]
	if cmd[0] == "--" {
		cmd = cmd[1:]
	}
	if len(cmd) == 0 {
		return fmt.Errorf("%w: exec %s: no command", errUsage, name)
	}
	req := contract.ExecRequest{Service: name, Command: cmd}
	inFile, _ := stdin.(*os.File)
	if inFile != nil && term.IsTerminal(int(inFile.Fd())) {
		req.TTY = true
		if ws, err := unix.IoctlGetWinsize(int(inFile.Fd()), unix.TIOCGWINSZ); err == nil {
			req.Rows, req.Cols = ws.Row, ws.Col
		}
	}
	conn, err := c.Exec(ctx, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	var send = func(typ byte, p []byte) error { return contract.WriteFrame(conn, typ, p) }
	if req.TTY {
		old, err := term.MakeRaw(int(inFile.Fd()))
		if err == nil {
			defer term.Restore(int(inFile.Fd()), old)
		}
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				if ws, err := unix.IoctlGetWinsize(int(inFile.Fd()), unix.TIOCGWINSZ); err == nil {
					send(contract.ExecFrameResize, []byte(fmt.Sprintf("%d %d", ws.Row, ws.Col)))
				}
			}
		}()
	}
	// stdin is sent until it ends; the frames are written by this goroutine only, besides the
	// resizes, and WriteFrame writes a frame in one call.
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdin.Read(buf)
			if n > 0 {
				if send(contract.ExecFrameStdin, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				send(contract.ExecFrameEOF, nil)
				return
			}
		}
	}()
	for {
		typ, payload, err := contract.ReadFrame(conn)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("exec: the connection closed before the command's exit status")
			}
			return fmt.Errorf("exec: %w", err)
		}
		switch typ {
		case contract.ExecFrameStdout:
			out.Write(payload)
		case contract.ExecFrameStderr:
			os.Stderr.Write(payload)
		case contract.ExecFrameError:
			return fmt.Errorf("exec: %s", payload)
		case contract.ExecFrameExit:
			code, err := strconv.Atoi(string(payload))
			if err != nil {
				return fmt.Errorf("exec: exit status %q", payload)
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		}
	}
}

// services prints GET /services as a table.
func services(ctx context.Context, c *client.Client, args []string, out io.Writer) error {
	if len(args) == 1 && args[0] == "--json" {
		svcs, err := c.Services(ctx)
		if err != nil {
			return err
		}
		return printJSON(out, map[string]any{"services": svcs})
	}
	if len(args) != 0 {
		return fmt.Errorf("%w: services [--json]", errUsage)
	}
	svcs, err := c.Services(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tKIND\tSTATE\tPID\tRESTARTS\tLAST EXIT\tERROR")
	for _, s := range svcs {
		kind := s.Kind
		if kind == "" {
			kind = "system"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, kind, s.State, s.Pid, s.Restarts, s.LastExit, s.Error)
	}
	return tw.Flush()
}
