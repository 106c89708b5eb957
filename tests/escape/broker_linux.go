package escape

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ballast-os/ballast/contract"
)

// The fd broker: a probe with the host's root (the superpowered one, --broker) opens host paths
// for the others and passes them the descriptors over an abstract Unix socket, which every
// container in the host's network namespace reaches. A default container then holds a descriptor
// no mount namespace, capability or DAC check keeps from it: only the kernel's SELinux checks on
// the descriptor's receipt and use stand between it and the host's files.
//
// A request is one line, an absolute path under the broker's root. The reply is "OK\n" with the
// descriptor (SCM_RIGHTS), or "ERR <why>\n".

// The host directories local-write and peer-storage ask the broker for.
const (
	localDir   = contract.LocalDir
	storageDir = contract.ContainerStorageDir
)

// DefaultBrokerSocket is the broker's abstract socket name, without the leading '@'.
const DefaultBrokerSocket = "ballast-probe-broker"

// The ways a request to the broker fails.
var (
	// errNoBroker: nothing answered on the broker's socket within the peer wait.
	errNoBroker = errors.New("no broker answered")
	// errFDRefused: the broker sent a descriptor, the kernel did not install it (the receiver
	// may not use the file: the message comes truncated, MSG_CTRUNC).
	errFDRefused = errors.New("the kernel refused the descriptor")
	// errBrokerOpen: the broker could not open the path: the suite's setup is wrong.
	errBrokerOpen = errors.New("the broker could not open it")
)

// serveBroker answers requests on the abstract socket name for paths under root until the
// process ends.
func serveBroker(name, root string) error {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@" + name, Net: "unix"})
	if err != nil {
		return fmt.Errorf("broker: listen on @%s: %w", name, err)
	}
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			go brokerServe(c, root)
		}
	}()
	return nil
}

func brokerServe(c *net.UnixConn, root string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(&limited{c, 4096}).ReadString('\n')
	if err != nil {
		return
	}
	path := strings.TrimSuffix(line, "\n")
	if !strings.HasPrefix(path, "/") {
		c.Write([]byte("ERR " + fmt.Sprintf("%q is not an absolute path", path) + "\n"))
		return
	}
	full := filepath.Join(root, filepath.Clean(path))
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) {
		fd, err = unix.Open(full, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		c.Write([]byte("ERR open " + full + ": " + errText(err) + "\n"))
		return
	}
	defer unix.Close(fd)
	if _, _, err := c.WriteMsgUnix([]byte("OK\n"), unix.UnixRights(fd), nil); err != nil {
		// The sender's own checks (SELinux on sending the descriptor) refused it; say so.
		c.Write([]byte("ERR send " + full + ": " + errText(err) + "\n"))
	}
}

// limited reads at most n bytes: a request is one short line.
type limited struct {
	c *net.UnixConn
	n int
}

func (l *limited) Read(b []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("request too long")
	}
	if len(b) > l.n {
		b = b[:l.n]
	}
	n, err := l.c.Read(b)
	l.n -= n
	return n, err
}

// brokerOpen asks the broker for path and returns the descriptor it passed. The first request
// waits up to the peer wait for a broker that starts later; once none answered, later requests
// fail at once.
func (p *prober) brokerOpen(path string) (int, error) {
	name := p.opts.BrokerSocket
	if name == "" {
		return -1, fmt.Errorf("%w: no broker socket (--broker-socket)", errNoBroker)
	}
	deadline := time.Now()
	if !p.brokerMissed {
		deadline = deadline.Add(p.opts.PeerWait)
	}
	var c *net.UnixConn
	for {
		var err error
		c, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: "@" + name, Net: "unix"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.brokerMissed = true
			return -1, fmt.Errorf("%w on @%s within %v: %s", errNoBroker, name, p.opts.PeerWait, errText(err))
		}
		time.Sleep(500 * time.Millisecond)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(path + "\n")); err != nil {
		return -1, fmt.Errorf("%w: request %s: %s", errNoBroker, path, errText(err))
	}
	buf := make([]byte, 1024)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, fmt.Errorf("%w: reply for %s: %s", errNoBroker, path, errText(err))
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if rights, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	reply := strings.TrimSpace(string(buf[:n]))
	if why, ok := strings.CutPrefix(reply, "ERR "); ok {
		closeAll(fds)
		return -1, fmt.Errorf("%w: %s", errBrokerOpen, why)
	}
	if reply != "OK" {
		closeAll(fds)
		return -1, fmt.Errorf("%w: reply %q for %s", errBrokerOpen, reply, path)
	}
	if len(fds) != 1 {
		closeAll(fds)
		return -1, fmt.Errorf("%w for %s (%d received, MSG_CTRUNC %v)", errFDRefused, path, len(fds), flags&unix.MSG_CTRUNC != 0)
	}
	return fds[0], nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// brokerNote is a failed request in a vector's detail; setup reports whether it is the suite's
// setup error (the broker could not open the path) rather than a block.
func brokerNote(path string, err error) (note string, setup bool) {
	return "broker " + path + ": " + err.Error(), errors.Is(err, errBrokerOpen)
}

// selinuxFSDirs are where the probe looks for selinuxfs: its own /sys and, in a superpowered
// container, the host's.
func (p *prober) selinuxFSDirs() []string {
	if p.opts.SELinuxFS != "" {
		return []string{p.opts.SELinuxFS}
	}
	return []string{"/sys/fs/selinux", HostRootfs + "/sys/fs/selinux"}
}

// selinuxFSPath is selinuxfs on the host, as the broker is asked for it.
const selinuxFSPath = "/sys/fs/selinux"

// selinuxOff tries to turn enforcing off (write 0 to enforce, then put back what was there) and
// to load a policy, through its own /sys, the host's root and a directory descriptor from the
// broker. The load is a few bytes that are no policy: the kernel checks load_policy first and
// parses after, so EINVAL means the write got past the permission check, and nothing is loaded.
// Opening load for writing alone is only noted: the kernel checks load_policy on the write.
func (p *prober) selinuxOff() verdict {
	var notes []string
	setup := false
	try := func(dirfd int, where string) (verdict, bool) {
		vd, ok := selinuxOffAt(dirfd, where)
		if !ok {
			notes = append(notes, vd.detail)
		}
		return vd, ok
	}
	for _, dir := range p.selinuxFSDirs() {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			notes = append(notes, dir+": "+errText(err))
			continue
		}
		vd, ok := try(fd, dir)
		unix.Close(fd)
		if ok {
			return vd
		}
	}
	fd, err := p.brokerOpen(selinuxFSPath)
	if err != nil {
		n, s := brokerNote(selinuxFSPath, err)
		notes, setup = append(notes, n), s
	} else {
		vd, ok := try(fd, "broker's "+selinuxFSPath)
		unix.Close(fd)
		if ok {
			return vd
		}
	}
	if setup {
		return failed("%s", strings.Join(notes, "; "))
	}
	return blocked("%s", strings.Join(notes, "; "))
}

// selinuxOffAt tries the selinuxfs open at dirfd; ok means the vector is ALLOWED there, else the
// verdict's detail says why not.
func selinuxOffAt(dirfd int, where string) (verdict, bool) {
	var notes []string
	cur, err := readAt(dirfd, "enforce")
	switch {
	case err != nil:
		notes = append(notes, "read enforce: "+errText(err))
	case cur == "0":
		return allowed("%s/enforce reads 0: SELinux is permissive", where), true
	}
	if fd, err := unix.Openat(dirfd, "enforce", unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
		notes = append(notes, "open enforce for writing: "+errText(err))
	} else {
		_, err := unix.Write(fd, []byte("0"))
		if err == nil {
			undo := "put back 1"
			if cur != "1" {
				undo = fmt.Sprintf("it read %q before", cur)
			} else if _, err := unix.Pwrite(fd, []byte("1"), 0); err != nil {
				undo = "putting back 1 failed: " + errText(err)
			}
			unix.Close(fd)
			return allowed("wrote 0 to %s/enforce (%s)", where, undo), true
		}
		unix.Close(fd)
		notes = append(notes, "write 0 to enforce: "+errText(err))
	}
	if fd, err := unix.Openat(dirfd, "load", unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
		notes = append(notes, "open load for writing: "+errText(err))
	} else {
		_, err := unix.Write(fd, []byte("ballast-probe: no policy\n"))
		unix.Close(fd)
		if err == nil || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
			return allowed("%s/load opened for writing and a write got past the load_policy check (%s)", where, errOrOK(err)), true
		}
		notes = append(notes, "load opened for writing, the write refused: "+errText(err))
	}
	return blocked("%s: %s", where, strings.Join(notes, ", ")), false
}

// readAt reads a small file relative to a directory descriptor, trimmed.
func readAt(dirfd int, name string) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	b := make([]byte, 256)
	n, err := unix.Read(fd, b)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b[:n])), nil
}

// localWrite asks the broker for the host's /local and /local/host-containers and makes a file
// in each through the descriptor (then removes it).
func (p *prober) localWrite() verdict {
	var notes []string
	setup := false
	host, _ := os.Hostname()
	name := fmt.Sprintf(".ballast-probe-write-%s-%d", host, p.self)
	for _, dir := range []string{localDir, storageDir} {
		fd, err := p.brokerOpen(dir)
		if err != nil {
			n, s := brokerNote(dir, err)
			notes, setup = append(notes, n), setup || s
			if errors.Is(err, errNoBroker) {
				break
			}
			continue
		}
		f, err := unix.Openat(fd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			unix.Close(fd)
			notes = append(notes, "create "+dir+"/"+name+" through the broker's descriptor: "+errText(err))
			continue
		}
		unix.Close(f)
		undo := "removed"
		if err := unix.Unlinkat(fd, name, 0); err != nil {
			undo = "remove failed: " + errText(err)
		}
		unix.Close(fd)
		return allowed("created %s/%s through the broker's descriptor (%s)", dir, name, undo)
	}
	if setup {
		return failed("%s", strings.Join(notes, "; "))
	}
	return blocked("%s", strings.Join(notes, "; "))
}

// peerStorage asks the broker for each peer's storage directory and reads the peer's secret in
// it through the descriptor.
func (p *prober) peerStorage() verdict {
	peers := p.peers()
	if len(peers) == 0 {
		return blocked("no peer named (--peer) besides the probe itself: nothing to look for")
	}
	deadline := time.Now().Add(p.opts.PeerWait)
	for {
		var notes []string
		again, setup := false, false
		for _, peer := range peers {
			dir := storageDir + "/" + peer
			fd, err := p.brokerOpen(dir)
			if err != nil {
				n, s := brokerNote(dir, err)
				notes = append(notes, n)
				// The peer's directory is made when it starts, maybe after this probe.
				again, setup = again || s, setup || s
				continue
			}
			found, note := p.readPeerSecret(fd, dir, peer)
			unix.Close(fd)
			if found != "" {
				return allowed("read %s's secret %s through the broker's descriptor", peer, found)
			}
			notes = append(notes, note)
			again = true
		}
		if !again || time.Now().After(deadline) {
			if setup {
				return failed("%s", strings.Join(notes, "; "))
			}
			return blocked("%s", strings.Join(notes, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// readPeerSecret looks in the directory open at fd for a secret that is not this probe's: the
// names it lists, and the name the peer's would have as its container's pid 1.
func (p *prober) readPeerSecret(fd int, dir, peer string) (string, string) {
	names, err := readNamesAt(fd)
	var notes []string
	if err != nil {
		notes = append(notes, "list "+dir+": "+errText(err))
	}
	names = append(names, fmt.Sprintf("%s%s-1", secretPrefix, peer))
	tried := map[string]bool{}
	for _, n := range names {
		if !strings.HasPrefix(n, secretPrefix) || tried[n] {
			continue
		}
		tried[n] = true
		s, err := readAt(fd, n)
		if err != nil {
			notes = append(notes, "open "+dir+"/"+n+": "+errText(err))
			continue
		}
		if strings.HasPrefix(s, "ballast-probe-secret ") && s+"\n" != p.secret {
			return dir + "/" + n, ""
		}
	}
	return "", strings.Join(notes, ", ")
}

// readNamesAt lists the directory open at fd, without moving fd's offset.
func readNamesAt(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// peers are the --peer names but the probe's own host name (its container's name).
func (p *prober) peers() []string {
	host, _ := os.Hostname()
	var out []string
	for _, n := range p.opts.Peers {
		if n != host {
			out = append(out, n)
		}
	}
	return out
}
