package supervise

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/console"
	"github.com/ballast-os/ballast/init/system/reap"
)

// DefaultTailLines is how many lines of a failed service's log the console gets.
const DefaultTailLines = 20

// tailWait bounds the wait for the rest of a failed instance's output: a helper it forked may
// hold the pipe open long after it exited.
const tailWait = 250 * time.Millisecond

// Exec runs a service as a program. Children are started through the Reaper, never os/exec,
// because in PID 1 the Reaper is the only one allowed to wait for them. Each instance starts with
// every signal at its default disposition and none blocked, whatever the init ignores or blocks
// (see startClean).
type Exec struct {
	Reaper *reap.Reaper
	Path   string   // absolute path of the program
	Args   []string // arguments after the program name
	Env    []string // the whole environment; nothing is inherited
	// EnvFile, when set, is read at each start: its KEY=VALUE lines are added to Env (later
	// ones win), # lines and blank lines skipped. A missing file adds nothing.
	EnvFile string
	// ArgsEnv names a variable of the environment (EnvFile's, typically) whose value, split at
	// blanks, is appended to Args at each start (contract.Service.ArgsEnv).
	ArgsEnv string
	Dir     string // working directory; "" is /

	// TTY, when set, makes the program a session leader with this terminal as its stdin, stdout,
	// stderr and controlling terminal (setsid + TIOCSCTTY), for an interactive shell. Its output
	// is not captured.
	TTY string

	// Log, when set, receives stdout and stderr line by line, and a failed instance's last lines
	// go to the console. When nil, output goes to Console line by line as "<id>: <line>". Either
	// way, a line starting with contract.ConsolePrefix (a service's milestone) is printed on the
	// console as a milestone too.
	Log LineLogger
	// Console receives prefixed output and is where failure tails end up [console.Default].
	Console *console.Writer
	// TailLines is how many lines Tail keeps [DefaultTailLines].
	TailLines int
}

// LineLogger takes a service's output, one line at a time (logs.Source).
type LineLogger interface{ Line(text string) }

// Start starts one instance of the program; stdin is /dev/null unless TTY is set.
func (x *Exec) Start(id string) (Instance, error) {
	if x.Reaper == nil {
		return nil, fmt.Errorf("%s: Exec without a Reaper", id)
	}
	dir := x.Dir
	if dir == "" {
		dir = "/"
	}
	env, err := x.environ()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	argv := x.argv(env)
	if x.TTY != "" {
		return x.startTTY(argv, dir, env)
	}

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: pipe: %w", id, err)
	}
	child, err := startClean(x.Reaper, x.Path, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{devnull.Fd(), pw.Fd(), pw.Fd()},
		// Its own process group, so stopping the service also stops what it forked.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	out := newCapture(id, x.console(), x.Log, x.tailLines())
	go out.copy(pr)
	return &execInstance{child: child, out: out}, nil
}

// argv is the program's name, Args, and the words of the ArgsEnv variable of env.
func (x *Exec) argv(env []string) []string {
	argv := append([]string{filepath.Base(x.Path)}, x.Args...)
	if x.ArgsEnv == "" {
		return argv
	}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, x.ArgsEnv+"="); ok {
			argv = append(argv, strings.Fields(v)...)
		}
	}
	return argv
}

// environ is Env with EnvFile's variables.
func (x *Exec) environ() ([]string, error) {
	if x.EnvFile == "" {
		return x.Env, nil
	}
	b, err := os.ReadFile(x.EnvFile)
	if errors.Is(err, os.ErrNotExist) {
		return x.Env, nil
	}
	if err != nil {
		return nil, fmt.Errorf("environment file: %w", err)
	}
	env := slices.Clone(x.Env)
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("environment file %s: line %d: not KEY=VALUE", x.EnvFile, n+1)
		}
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
		env = append(env, line)
	}
	return env, nil
}

func (x *Exec) startTTY(argv []string, dir string, env []string) (Instance, error) {
	// O_NOCTTY: the terminal must become the child's controlling terminal, never PID 1's.
	tty, err := os.OpenFile(x.TTY, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", argv[0], err)
	}
	defer tty.Close()
	fd := tty.Fd()
	child, err := startClean(x.Reaper, x.Path, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{fd, fd, fd},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", x.Path, x.TTY, err)
	}
	return &execInstance{child: child}, nil
}

func (x *Exec) console() *console.Writer {
	if x.Console == nil {
		return console.Default
	}
	return x.Console
}

func (x *Exec) tailLines() int {
	if x.TailLines <= 0 {
		return DefaultTailLines
	}
	return x.TailLines
}

type execInstance struct {
	child *reap.Child
	out   *capture // nil on a terminal
}

func (i *execInstance) Pid() int                   { return i.child.Pid() }
func (i *execInstance) Done() <-chan struct{}      { return i.child.Done() }
func (i *execInstance) Status() syscall.WaitStatus { return i.child.Status() }
func (i *execInstance) Signal(sig syscall.Signal) error {
	err := i.child.SignalGroup(sig)
	if errors.Is(err, syscall.ESRCH) {
		// The group is gone but the leader was not reaped yet: nothing left to signal.
		return nil
	}
	return err
}

func (i *execInstance) Tail() []string {
	if i.out == nil {
		return nil
	}
	return i.out.tail(tailWait)
}

// capture copies a service's output to its log or the console and remembers the last lines.
type capture struct {
	id      string
	console *console.Writer
	log     LineLogger // nil: prefixed lines to the console
	done    chan struct{}

	mu   sync.Mutex
	ring []string
	next int // where the next line goes once ring is full
	max  int
}

func newCapture(id string, c *console.Writer, log LineLogger, max int) *capture {
	return &capture{id: id, console: c, log: log, done: make(chan struct{}), max: max}
}

// maxLine splits very long lines, so one runaway line cannot hold the memory of PID 1.
const maxLine = 4096

func (c *capture) copy(r io.ReadCloser) {
	defer close(c.done)
	defer r.Close()
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			c.line(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (c *capture) line(b []byte) {
	text := string(b)
	if n := len(text); n > 0 && text[n-1] == '\n' {
		text = text[:n-1]
	}
	if c.log == nil {
		c.console.Raw(c.id + ": " + text)
		return
	}
	c.log.Line(text)
	if strings.HasPrefix(text, contract.ConsolePrefix) {
		c.console.Relay(text)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ring) < c.max {
		c.ring = append(c.ring, text)
		return
	}
	c.ring[c.next] = text
	c.next = (c.next + 1) % c.max
}

// tail returns the remembered lines of a logged capture, oldest first, after waiting up to d
// for the output to end.
func (c *capture) tail(d time.Duration) []string {
	if c.log == nil {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.ring))
	out = append(out, c.ring[c.next:]...)
	return append(out, c.ring[:c.next]...)
}
