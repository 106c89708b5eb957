package k8scluster

import (
	"io"
	"net"
	"sync"
)

// forwarder joins each connection accepted on a listener to one it dials, byte for byte: the
// way across the boundary between the test's network namespace and the control plane's.
type forwarder struct {
	ln   net.Listener
	dial func() (net.Conn, error)
	mu   sync.Mutex
	open map[net.Conn]struct{}
	done bool
	wg   sync.WaitGroup
}

func forward(ln net.Listener, dial func() (net.Conn, error)) *forwarder {
	f := &forwarder{ln: ln, dial: dial, open: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.join(c)
		}()
	}
}

// track records c for close; it refuses (and closes c) once the forwarder is closed.
func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		c.Close()
		return false
	}
	f.open[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.open, c)
	f.mu.Unlock()
	c.Close()
}

func (f *forwarder) join(in net.Conn) {
	if !f.track(in) {
		return
	}
	defer f.untrack(in)
	out, err := f.dial()
	if err != nil {
		return
	}
	if !f.track(out) {
		return
	}
	defer f.untrack(out)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(out, in)
	}()
	copyHalf(in, out)
	wg.Wait()
}

// copyHalf copies src to dst and then closes dst's write side, so a half-close crosses over.
func copyHalf(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = dst.Close()
}

// Close stops accepting and cuts every open connection.
func (f *forwarder) Close() {
	f.ln.Close()
	f.mu.Lock()
	f.done = true
	for c := range f.open {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
