package session

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/krunbench/krunbench/session/qemu"
	"github.com/krunbench/krunbench/session/terminal"
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

	listeners []net.Listener
	outputs   sync.WaitGroup // stdout and stderr copies still writing

	mu      sync.Mutex
	size    terminal.Size
	winsize io.Writer // nil until the engine has connected
	conns   []io.Closer
}

func newHostPorts(cfg *Config) *hostPorts {
	h := &hostPorts{cfg: cfg, size: cfg.ConsoleSize}
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

// listen makes one unix socket per port in dir for QEMU to connect to,
// and serves each connection as it comes.
func (h *hostPorts) listen(dir string) ([]qemu.Port, error) {
	var specs []qemu.Port
	for _, name := range h.names {
		path := filepath.Join(dir, name+".sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			h.close()
			return nil, fmt.Errorf("port %s: %w", name, err)
		}
		h.listeners = append(h.listeners, ln)
		specs = append(specs, qemu.Port{Name: name, Socket: path})
		if name == portStdout || name == portStderr {
			h.outputs.Add(1)
		}
		go h.accept(ln, name)
	}
	return specs, nil
}

// accept serves the one connection the engine makes to ln.
func (h *hostPorts) accept(ln net.Listener, name string) {
	conn, err := ln.Accept()
	ln.Close()
	if err != nil {
		if name == portStdout || name == portStderr {
			h.outputs.Done()
		}
		return
	}
	h.serve(name, conn)
}

// serve runs the host side of one port over conn.
func (h *hostPorts) serve(name string, conn io.ReadWriteCloser) {
	switch name {
	case portStdin:
		h.mu.Lock()
		h.conns = append(h.conns, conn)
		h.mu.Unlock()
		go func() {
			_, _ = io.Copy(conn, h.cfg.Stdin)
			endInput(conn)
		}()
	case portStdout:
		go h.copyOut(h.cfg.Stdout, conn)
	case portStderr:
		go h.copyOut(h.cfg.Stderr, conn)
	case portWinsize:
		h.mu.Lock()
		h.winsize = conn
		h.sendLocked()
		h.mu.Unlock()
	}
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
// the engine has ended (its side of every port is closed then). A port
// the engine never connected is given up.
func (h *hostPorts) finish() {
	for _, ln := range h.listeners {
		ln.Close()
	}
	h.outputs.Wait()
}

// close releases the listeners and the size port.
func (h *hostPorts) close() {
	for _, ln := range h.listeners {
		ln.Close()
	}
	h.mu.Lock()
	if c, ok := h.winsize.(io.Closer); ok {
		c.Close()
	}
	h.winsize = nil
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
	h.mu.Unlock()
}
