package vhostuser

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// DefaultMaxMemSlots is the default answer to GET_MAX_MEM_SLOTS.
const DefaultMaxMemSlots = 32

// DefaultBusyWait is how long Serve holds a new connection while another
// one is served before refusing it.
const DefaultBusyWait = 2 * time.Second

// maxMemSlots is QEMU's VHOST_USER_MAX_RAM_SLOTS.
const maxMemSlots = 512

// Errors returned by the Backend.
var (
	// ErrBusy reports a connection refused because another front-end is
	// being served.
	ErrBusy = errors.New("vhostuser: another front-end is connected")
	// ErrClosed reports use of a closed Backend.
	ErrClosed = errors.New("vhostuser: backend closed")
)

// Options configure a Backend.
type Options struct {
	// Log receives connection events, protocol errors (Warn/Error) and
	// every request received (Debug); nil discards them.
	Log *slog.Logger
	// MaxMemSlots is the number of memory regions accepted through
	// ADD_MEM_REG (GET_MAX_MEM_SLOTS); 0 means DefaultMaxMemSlots, at
	// most 512.
	MaxMemSlots int
	// BusyWait is how long Serve holds a connection that arrives while
	// another is served, in case that one is ending (a front-end that
	// reconnects at once); after it the connection is refused. 0 means
	// DefaultBusyWait; negative refuses at once.
	BusyWait time.Duration
}

// Backend serves one virtio.Device to vhost-user front-ends, one
// connection at a time. The device is reset between connections.
type Backend struct {
	dev      virtio.Device
	log      *slog.Logger
	maxSlots int
	busyWait time.Duration
	connSeq  atomic.Uint64

	mu        sync.Mutex
	closed    bool
	listeners map[*net.UnixListener]struct{}
	cur       *net.UnixConn  // the connection being served
	curDone   chan struct{}  // closed when cur has been torn down
	wg        sync.WaitGroup // connections being served
}

// NewBackend returns a backend driving dev.
func NewBackend(dev virtio.Device, opts Options) *Backend {
	b := &Backend{dev: dev, log: opts.Log, maxSlots: opts.MaxMemSlots, busyWait: opts.BusyWait,
		listeners: map[*net.UnixListener]struct{}{}}
	if b.busyWait == 0 {
		b.busyWait = DefaultBusyWait
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.maxSlots <= 0 {
		b.maxSlots = DefaultMaxMemSlots
	}
	b.maxSlots = min(b.maxSlots, maxMemSlots)
	return b
}

// claim makes uc the current connection; on failure uc is closed.
func (b *Backend) claim(uc *net.UnixConn) (chan struct{}, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	switch {
	case b.closed:
		err = ErrClosed
	case b.cur != nil:
		err = ErrBusy
	}
	if err != nil {
		uc.Close()
		return nil, err
	}
	b.cur, b.curDone = uc, make(chan struct{})
	b.wg.Add(1)
	return b.curDone, nil
}

// ServeConn serves one front-end connection until it closes, the front-end
// breaks the protocol, or the backend is closed; the device is then reset
// and uc closed. It returns ErrBusy at once if another connection is being
// served, and nil when the front-end disconnected cleanly.
func (b *Backend) ServeConn(uc *net.UnixConn) error {
	done, err := b.claim(uc)
	if err != nil {
		return err
	}
	return b.serveClaimed(uc, done)
}

func (b *Backend) serveClaimed(uc *net.UnixConn, done chan struct{}) error {
	defer b.wg.Done()
	defer func() {
		uc.Close()
		b.mu.Lock()
		b.cur, b.curDone = nil, nil
		b.mu.Unlock()
		close(done)
	}()
	log := b.log.With("conn", b.connSeq.Add(1))
	s, err := newSession(b.dev, uc, log, b.maxSlots)
	if err != nil {
		log.Error("vhost-user: cannot serve connection", "err", err)
		return err
	}
	log.Info("vhost-user: front-end connected")
	err = s.serve()
	if err != nil {
		log.Error("vhost-user: closing connection", "err", err)
	} else {
		log.Info("vhost-user: front-end disconnected")
	}
	return err
}

// Serve accepts front-end connections on ln and serves them one after
// another; a connection arriving while another is served is held for
// Options.BusyWait, then refused (closed) if that one is still served. It returns nil after Close (or Shutdown of ln by ListenAndServe),
// or the error that made Accept fail. ln is closed on return.
func (b *Backend) Serve(ln *net.UnixListener) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	b.listeners[ln] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.listeners, ln)
		b.mu.Unlock()
		ln.Close()
	}()
	for {
		uc, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		b.waitIdle()
		done, err := b.claim(uc)
		if err != nil {
			b.log.Warn("vhost-user: refusing connection", "err", err)
			continue
		}
		go func() { _ = b.serveClaimed(uc, done) }()
	}
}

// ListenAndServe listens on the unix socket path and serves front-ends
// until ctx is done or the backend is closed. When ctx is done it stops
// listening, disconnects the current front-end, waits until the device is
// reset, and returns ctx.Err(). The socket file is removed on return; an
// existing file at path is an error.
func (b *Backend) ListenAndServe(ctx context.Context, path string) error {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	ln.SetUnlinkOnClose(true)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	err = b.Serve(ln)
	if ctx.Err() != nil {
		b.disconnect()
		return ctx.Err()
	}
	return err
}

// waitIdle waits up to busyWait for the current connection to end.
func (b *Backend) waitIdle() {
	b.mu.Lock()
	done := b.curDone
	b.mu.Unlock()
	if done == nil || b.busyWait < 0 {
		return
	}
	timer := time.NewTimer(b.busyWait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// disconnect closes the current connection and waits for its teardown.
func (b *Backend) disconnect() {
	b.mu.Lock()
	uc, done := b.cur, b.curDone
	b.mu.Unlock()
	if uc != nil {
		uc.Close()
		<-done
	}
}

// Close stops listening, disconnects the current front-end and waits until
// the device is reset and every resource released. The backend cannot be
// used afterwards.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	for ln := range b.listeners {
		ln.Close()
	}
	if b.cur != nil {
		b.cur.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}
