package session

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/session/terminal"
	"github.com/krunbench/krunbench/vmm/console"
)

// Names of the virtio-console ports the session gives the guest, as the
// default init knows them (initlib/kruninit; a test checks they agree).
const (
	portStdin   = "krun-stdin"
	portStdout  = "krun-stdout"
	portStderr  = "krun-stderr"
	portWinsize = "krun-winsize"
	// portsParam announces the ports on the kernel command line, so the
	// init waits for them (they appear after the control handshake).
	portsParam = "krunbench.ports"
)

// hostPorts is the host side of a session's named ports: the workload's
// standard streams that are not the console (Config.Stdin, Stdout,
// Stderr) and krun-winsize, on which the console's size goes to the init
// as lines "COLS ROWS" (QEMU's virtconsole cannot carry a size; the init
// applies it with TIOCSWINSZ).
type hostPorts struct {
	cfg   *Config
	names []string

	outputs   sync.WaitGroup // stdout and stderr copies still writing
	flush     func()         // waits for the in-process engine's output
	closed    chan struct{}  // closed by close: output ports' reads end
	closeOnce sync.Once

	mu      sync.Mutex
	size    terminal.Size
	winsize io.Writer // nil until the engine has connected

	cmu   sync.Mutex
	conns []io.Closer // closed by close, without mu (a size write may block)
}

func newHostPorts(cfg *Config) *hostPorts {
	h := &hostPorts{cfg: cfg, size: cfg.ConsoleSize, closed: make(chan struct{})}
	if cfg.Stdin != nil {
		h.names = append(h.names, portStdin)
	}
	if cfg.Stdout != nil {
		h.names = append(h.names, portStdout)
	}
	if cfg.Stderr != nil {
		h.names = append(h.names, portStderr)
	}
	h.names = append(h.names, portWinsize)
	return h
}

// kernelParam is the command-line word that announces the ports.
func (h *hostPorts) kernelParam() string {
	return portsParam + "=" + strings.Join(h.names, ",")
}

// connect makes one connected socket pair per port for QEMU: QEMU's
// ends go in the returned specs (qemu.Start passes them to QEMU and
// closes them after it exits), the host ends are served here at once.
func (h *hostPorts) connect() ([]qemu.Port, error) {
	var specs []qemu.Port
	fail := func(err error) ([]qemu.Port, error) {
		for _, p := range specs {
			p.File.Close()
		}
		h.close()
		return nil, err
	}
	for _, name := range h.names {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("port %s: %w", name, err))
		}
		hostEnd := os.NewFile(uintptr(fds[0]), name+" (host)")
		conn, err := net.FileConn(hostEnd)
		hostEnd.Close() // FileConn made its own copy
		qemuEnd := os.NewFile(uintptr(fds[1]), name+" (qemu)")
		if err != nil {
			qemuEnd.Close()
			return fail(fmt.Errorf("port %s: %w", name, err))
		}
		specs = append(specs, qemu.Port{Name: name, File: qemuEnd})
		if name == portStdout || name == portStderr {
			h.outputs.Add(1)
		}
		h.serve(name, conn)
	}
	return specs, nil
}

// serve runs the host side of one port over conn.
func (h *hostPorts) serve(name string, conn io.ReadWriteCloser) {
	switch name {
	case portStdin:
		h.keep(conn)
		go func() {
			_, _ = io.Copy(noSigpipe(conn), h.cfg.Stdin)
			endInput(conn)
		}()
	case portStdout:
		go h.copyOut(h.cfg.Stdout, conn)
	case portStderr:
		go h.copyOut(h.cfg.Stderr, conn)
	case portWinsize:
		h.keep(conn)
		h.mu.Lock()
		h.winsize = noSigpipe(conn)
		h.sendLocked()
		h.mu.Unlock()
	}
}

// keep records c for close.
func (h *hostPorts) keep(c io.Closer) {
	h.cmu.Lock()
	defer h.cmu.Unlock()
	h.conns = append(h.conns, c)
}

// noSigpipe writes to a socket with MSG_NOSIGNAL: run listens for
// SIGPIPE (a reader of its stdout that went away), and Go delivers a
// listened-for SIGPIPE for a write to any descriptor, so a write to an
// engine that has just exited must fail with EPIPE without raising it.
func noSigpipe(w io.Writer) io.Writer {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return w
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return w
	}
	return sigpipeFree{rc}
}

type sigpipeFree struct{ rc syscall.RawConn }

func (s sigpipeFree) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		var n int
		var werr error
		err := s.rc.Write(func(fd uintptr) bool {
			n, werr = unix.SendmsgN(int(fd), p[written:], nil, nil, unix.MSG_NOSIGNAL)
			return !errors.Is(werr, unix.EAGAIN)
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// endInput ends a port's input: the engine sees the port closed once it
// has read everything before (the guest's read then returns 0). On a
// socket that is a half close: QEMU drops a socket on hang-up at once,
// unread bytes included, but reads a half-closed one to its end.
func endInput(conn io.Closer) {
	if hc, ok := conn.(interface{ CloseWrite() error }); ok {
		if hc.CloseWrite() == nil {
			return
		}
	}
	conn.Close()
}

// copyOut copies a guest stream to w until the guest side ends. When w
// fails (a reader that went away) the rest is read and dropped, so the
// guest's writes never stall on a port nobody empties.
func (h *hostPorts) copyOut(w io.Writer, conn io.ReadCloser) {
	defer h.outputs.Done()
	defer conn.Close()
	if _, err := io.Copy(w, conn); err != nil && !errors.Is(err, os.ErrClosed) {
		_, _ = io.Copy(io.Discard, conn)
	}
}

// consolePorts gives the ports to the in-process engine as
// virtio-console ports (vmm/console) with in-memory host sides; flush is
// then what waits for their output (the device's writers, after the VM
// is closed).
func (h *hostPorts) consolePorts() []console.Port {
	var ports []console.Port
	for _, name := range h.names {
		var host io.ReadWriter
		switch name {
		case portStdin:
			// The device reports the reader's end as the port's close.
			host = readWriter{h.cfg.Stdin, io.Discard}
		case portStdout:
			host = readWriter{noInput{h.closed}, h.cfg.Stdout}
		case portStderr:
			host = readWriter{noInput{h.closed}, h.cfg.Stderr}
		case portWinsize:
			// The first size goes out once the device reads (sendSize).
			r, w := io.Pipe()
			host = readWriter{r, io.Discard}
			h.keep(r)
			h.mu.Lock()
			h.winsize = w
			h.mu.Unlock()
		}
		ports = append(ports, console.Port{Name: name, Host: host})
	}
	return ports
}

// readWriter is a port's host side made of two halves.
type readWriter struct {
	io.Reader
	io.Writer
}

// noInput is the input of an output-only port: nothing, until the
// session closes its ports. It must not end with io.EOF: vmm/console
// reports a host side's end of input as the port closed by the host
// (PORT_OPEN 0), and Linux blocks the guest's writes to such a port.
type noInput struct{ closed <-chan struct{} }

func (r noInput) Read([]byte) (int, error) {
	<-r.closed
	return 0, os.ErrClosed
}

// sendSize sends the current size (the first line, once the in-process
// device reads its ports).
func (h *hostPorts) sendSize() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendLocked()
}

// resize records the console's size and sends it to the init.
func (h *hostPorts) resize(s terminal.Size) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.size = s
	h.sendLocked()
}

// sendLocked sends the current size, once connected; h.mu is held. The
// first line goes out at connection even when the size is unknown ("0
// 0"): the init waits for one before it starts the workload.
func (h *hostPorts) sendLocked() {
	if h.winsize != nil {
		_, _ = fmt.Fprintf(h.winsize, "%d %d\n", h.size.Cols, h.size.Rows)
	}
}

// finish waits for the guest's output streams to be written out, once
// the engine has ended (its side of every port is closed then).
func (h *hostPorts) finish() {
	h.outputs.Wait()
	if h.flush != nil {
		h.flush()
	}
}

// close releases the host ends of the ports and the size port.
func (h *hostPorts) close() {
	h.closeOnce.Do(func() { close(h.closed) })
	h.cmu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
	h.cmu.Unlock()
	h.mu.Lock()
	if c, ok := h.winsize.(io.Closer); ok {
		c.Close()
	}
	h.winsize = nil
	h.mu.Unlock()
}
