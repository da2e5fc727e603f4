// Package console is the virtio-console device (virtio device id 3) with
// VIRTIO_CONSOLE_F_MULTIPORT and VIRTIO_CONSOLE_F_SIZE.
//
// Each port is bound to a host io.ReadWriter: typically the master side of
// a pty for the user's terminal (port 0, the guest's hvc0) and pipes for
// named ports such as "krun-stdout" that the guest's init redirects its
// file descriptors to. Queue layout with MULTIPORT: 0/1 are port 0's
// receive/transmit queues, 2/3 the control receive/transmit queues, then
// 4/5 port 1, 6/7 port 2 and so on. Without MULTIPORT only port 0 exists.
//
// Host to guest: one goroutine per port reads the host side into a bounded
// pending buffer and the device copies it into the guest's receive buffers
// as they become available. Nothing is dropped: when the guest posts no
// buffers the pending buffer fills up and the host side is no longer read,
// so the backpressure reaches the host writer. Guest to host: transmit
// chains are copied out and written to the host side by one goroutine per
// port, at most TxBacklog bytes ahead of it, so a slow host writer stalls
// that port's guest writers only, and nothing is dropped.
//
// The device knows nothing about its transport; the terminal size reaches
// the guest through Resize, as a VIRTIO_CONSOLE_RESIZE control message
// (MULTIPORT) or a configuration change (SIZE only).
package console

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Feature bits of the console device.
const (
	FeatureSize       = 0 // VIRTIO_CONSOLE_F_SIZE: cols/rows in config space
	FeatureMultiport  = 1 // VIRTIO_CONSOLE_F_MULTIPORT: ports and control queues
	FeatureEmergWrite = 2 // VIRTIO_CONSOLE_F_EMERG_WRITE (not offered)
)

// QueueSize is the largest queue the device accepts.
const QueueSize = 256

// ConfigSize is the size of struct virtio_console_config (cols, rows,
// max_nr_ports, emerg_wr).
const ConfigSize = 12

// MaxPorts is the largest number of ports a console accepts.
const MaxPorts = 64

// MaxNameLen is the longest port name accepted.
const MaxNameLen = 255

// Tunables.
const (
	// maxPending bounds the host bytes read ahead of the guest per port.
	maxPending = 64 << 10
	// readChunk is the size of one read from the host side.
	readChunk = 16 << 10
	// maxTxChain caps one transmit chain; Linux sends at most 32 KiB.
	maxTxChain = 1 << 20
	// txUnit is the unit in which transmit bytes waiting for the host
	// writer are counted against TxBacklog.
	txUnit = 4 << 10
	// maxCtrlBacklog bounds control messages waiting for control
	// receive buffers (a guest repeating DEVICE_READY cannot grow it
	// without limit).
	maxCtrlBacklog = 1024
)

// TxBacklog bounds the guest's transmit bytes per port that the device
// has taken from the guest (copied out and returned the buffers) but the
// host writer has not written yet. Beyond it the device takes no more
// transmit buffers until the host catches up, so a slow host reader slows
// the guest down instead of growing the VMM's memory; a single chain
// larger than TxBacklog (up to 1 MiB) is still taken when the backlog is
// empty.
const TxBacklog = 64 << 10

// ErrClosed is returned by Activate after Close.
var ErrClosed = errors.New("console: closed")

// Port is one console port.
type Port struct {
	// Name is sent to the guest with VIRTIO_CONSOLE_PORT_NAME; it appears
	// as /sys/class/virtio-ports/vportNpM/name (udev links it under
	// /dev/virtio-ports/). Empty sends no name.
	Name string
	// Host is the host side: what it reads goes to the guest, what the
	// guest writes goes to it. Nil makes a port whose output is discarded
	// and which never has input. Its Read is called from a goroutine that
	// ends when Read returns an error (close the host side to stop it).
	// io.EOF is the host closing the port: with MULTIPORT the guest gets
	// PORT_OPEN 0 once the bytes before are delivered, and Linux then
	// blocks the guest's writes too, so an output-only host side must
	// block in Read rather than return io.EOF.
	Host io.ReadWriter
	// Console makes the port a console (hvc): set it on port 0 for hvc0.
	// Resize targets the first console port.
	Console bool
}

// Options configure a Console.
type Options struct {
	// Ports are the ports, port 0 first; at least one.
	Ports []Port
	// ResizeColsFirst orders the VIRTIO_CONSOLE_RESIZE payload as the
	// virtio spec does (cols, rows). By default it is rows then cols,
	// which is what Linux read from 2.6.35 until the 2025 fix and what
	// libkrun sends, so libkrunfw kernels see the right size.
	ResizeColsFirst bool
	// Log receives guest protocol errors and host I/O errors; nil
	// discards them.
	Log *slog.Logger
}

// Console is a virtio-console device. It implements virtio.Device and the
// mmio transport's ConfigNotifiee.
type Console struct {
	ports     []*port
	consoleID int // port that Resize targets; -1 for none
	colsFirst bool
	log       *slog.Logger

	mu        sync.Mutex
	acked     uint64
	cols      uint16
	rows      uint16
	cfgNotify virtio.Notifier
	run       *activation
	closed    bool

	flushed chan struct{} // closed when every port's writer has ended
}

var _ virtio.Device = (*Console)(nil)

// New returns a console with the given ports and starts their host-side
// reader and writer goroutines.
func New(opts Options) (*Console, error) {
	if len(opts.Ports) == 0 {
		return nil, errors.New("console: at least one port is required")
	}
	if len(opts.Ports) > MaxPorts {
		return nil, fmt.Errorf("console: %d ports, at most %d", len(opts.Ports), MaxPorts)
	}
	c := &Console{consoleID: -1, colsFirst: opts.ResizeColsFirst, log: opts.Log, flushed: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for i, p := range opts.Ports {
		if len(p.Name) > MaxNameLen || strings.IndexByte(p.Name, 0) >= 0 {
			return nil, fmt.Errorf("console: port %d: bad name %q", i, p.Name)
		}
		if p.Console && c.consoleID < 0 {
			c.consoleID = i
		}
		c.ports = append(c.ports, newPort(i, p))
	}
	var writers sync.WaitGroup
	for _, p := range c.ports {
		writers.Go(func() { c.writeLoop(p) })
		if p.host != nil {
			go c.readLoop(p)
		}
	}
	go func() {
		writers.Wait()
		close(c.flushed)
	}()
	return c, nil
}

// Flushed is closed once Close has been called and every port's writer
// has written its backlog to the host side (or given up on a write error):
// the moment the host side may be closed without losing the guest's last
// output.
func (c *Console) Flushed() <-chan struct{} { return c.flushed }

// rxQueue and txQueue map a port to its receive and transmit queues.
func rxQueue(port int) int {
	if port == 0 {
		return 0
	}
	return 2 + 2*port
}

func txQueue(port int) int { return rxQueue(port) + 1 }

// Control queue indices.
const (
	ctrlRxQueue = 2
	ctrlTxQueue = 3
)

// Type is virtio-console.
func (c *Console) Type() uint32 { return virtio.DeviceIDConsole }

// Features offers VERSION_1, EVENT_IDX and SIZE, and MULTIPORT when the
// console has more than one port.
//
// A lone console port is offered without MULTIPORT on purpose: with it,
// Linux adds port 0 (and registers hvc0 as a console) from a workqueue,
// after control-queue round trips, and on a fast boot with a
// non-preemptible kernel the kernel opens /dev/console for init before
// that work has run: "unable to open an initial console", and a user init
// that writes to its inherited stdout is silent (seen in about half the
// runs under nested KVM). Without MULTIPORT port 0 is added in the
// driver's probe, so hvc0 exists before init starts.
func (c *Console) Features() uint64 {
	f := uint64(1<<virtio.FeatureVersion1 | 1<<virtio.FeatureEventIdx | 1<<FeatureSize)
	if len(c.ports) > 1 {
		f |= 1 << FeatureMultiport
	}
	return f
}

// AckFeatures records the driver's features.
func (c *Console) AckFeatures(f uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acked = f & c.Features()
}

// ReadConfig reads struct virtio_console_config; bytes past it read as
// zero.
func (c *Console) ReadConfig(off uint64, data []byte) {
	var cfg [ConfigSize]byte
	cols, rows := c.Size()
	binary.LittleEndian.PutUint16(cfg[0:], cols)
	binary.LittleEndian.PutUint16(cfg[2:], rows)
	binary.LittleEndian.PutUint32(cfg[4:], uint32(len(c.ports)))
	clear(data)
	if off < ConfigSize {
		copy(data, cfg[off:])
	}
}

// WriteConfig ignores writes: emerg_wr is not offered and the rest is
// read-only.
func (c *Console) WriteConfig(off uint64, data []byte) {
	c.log.Debug("virtio-console: ignoring config write", "offset", off, "len", len(data))
}

// NumQueues is two per port plus the two control queues.
func (c *Console) NumQueues() int { return 2*len(c.ports) + 2 }

// MaxQueueSize is QueueSize.
func (c *Console) MaxQueueSize() uint16 { return QueueSize }

// SetConfigNotifier records the notifier that raises a configuration
// change interrupt (set by the transport).
func (c *Console) SetConfigNotifier(n virtio.Notifier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfgNotify = n
}

// Size returns the console size last given to Resize.
func (c *Console) Size() (cols, rows uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cols, c.rows
}

// Resize records the terminal size of the console port and tells the
// guest: with MULTIPORT as a RESIZE control message for the first console
// port (once the guest has made it ready; it gets the size then), without
// it through the config space and a configuration change interrupt.
// Sizes with a zero dimension are recorded but never sent.
func (c *Console) Resize(cols, rows uint16) {
	c.mu.Lock()
	c.cols, c.rows = cols, rows
	a, acked, notify := c.run, c.acked, c.cfgNotify
	c.mu.Unlock()
	if a != nil && a.multiport {
		if c.consoleID >= 0 {
			a.mu.Lock()
			if a.ready[c.consoleID] {
				c.sendResizeLocked(a, c.consoleID)
			}
			a.mu.Unlock()
			a.wakeCtrl()
		}
		return
	}
	if acked&(1<<FeatureSize) != 0 && notify != nil {
		if err := notify.Notify(); err != nil {
			c.log.Warn("virtio-console: config change notification", "err", err)
		}
	}
}

// activation is the state of one Activate..Reset period.
type activation struct {
	mem       virtio.GuestMemory
	queues    []*virtio.Queue // nil where the driver did not enable the queue
	notifiers []virtio.Notifier
	multiport bool
	kicks     []chan struct{}
	ctrlWake  chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	open      []atomic.Bool // guest has the port open (PORT_OPEN from the guest)
	eofSent   []atomic.Bool // PORT_OPEN 0 sent for the host side's end

	mu      sync.Mutex
	ctrlOut [][]byte // control messages waiting for control rx buffers
	ready   []bool   // PORT_READY received
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (a *activation) wakeCtrl() { wake(a.ctrlWake) }

// Activate starts serving the queues. With MULTIPORT the control queues
// must be enabled; port queues the driver did not enable are not served.
func (c *Console) Activate(mem virtio.GuestMemory, queues []*virtio.Queue, notifiers []virtio.Notifier) error {
	if len(queues) != c.NumQueues() || len(notifiers) != len(queues) {
		return fmt.Errorf("console: activate with %d queues and %d notifiers, want %d", len(queues), len(notifiers), c.NumQueues())
	}
	c.mu.Lock()
	acked := c.acked
	c.mu.Unlock()
	multiport := acked&(1<<FeatureMultiport) != 0
	eventIdx := acked&(1<<virtio.FeatureEventIdx) != 0
	qs := make([]*virtio.Queue, len(queues))
	for i, q := range queues {
		if q == nil || !q.Ready() || (!multiport && i > 1) {
			continue
		}
		q.SetEventIdx(eventIdx)
		if err := q.Validate(mem); err != nil {
			return fmt.Errorf("console: queue %d: %w", i, err)
		}
		qs[i] = q
	}
	if multiport && (qs[ctrlRxQueue] == nil || qs[ctrlTxQueue] == nil) {
		return errors.New("console: MULTIPORT negotiated but the control queues are not enabled")
	}
	for p := range c.ports {
		if q := qs[txQueue(p)]; q != nil {
			q.SetMaxChainBytes(maxTxChain)
		}
	}
	c.Reset()
	a := &activation{
		mem: mem, queues: qs, notifiers: notifiers, multiport: multiport,
		kicks:    make([]chan struct{}, len(qs)),
		ctrlWake: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		open:     make([]atomic.Bool, len(c.ports)),
		eofSent:  make([]atomic.Bool, len(c.ports)),
		ready:    make([]bool, len(c.ports)),
	}
	for i := range a.kicks {
		a.kicks[i] = make(chan struct{}, 1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.run = a
	if multiport {
		a.wg.Add(1)
		go c.ctrlLoop(a)
	}
	for _, p := range c.ports {
		if !multiport && p.id > 0 {
			break
		}
		if qs[rxQueue(p.id)] != nil {
			a.wg.Add(1)
			go c.rxLoop(a, p)
		}
		if qs[txQueue(p.id)] != nil {
			a.wg.Add(1)
			go c.txLoop(a, p)
		}
	}
	return nil
}

// QueueNotify wakes the goroutine serving the queue; it never blocks.
func (c *Console) QueueNotify(index int) {
	c.mu.Lock()
	a := c.run
	c.mu.Unlock()
	if a == nil || index < 0 || index >= len(a.kicks) {
		return
	}
	if index == ctrlRxQueue || index == ctrlTxQueue {
		a.wakeCtrl()
		return
	}
	wake(a.kicks[index])
}

// Reset stops serving the queues and waits for the device's goroutines.
// Host bytes not yet delivered stay pending for the next activation.
func (c *Console) Reset() {
	c.mu.Lock()
	a := c.run
	c.run = nil
	c.mu.Unlock()
	if a == nil {
		return
	}
	close(a.stop)
	a.wg.Wait()
}

// Close resets the device and stops the host-side goroutines: writers end
// once their backlog is written, readers at their next return from Read
// (closing the host side makes that immediate). The console cannot be
// activated again.
func (c *Console) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.Reset()
	for _, p := range c.ports {
		p.close()
	}
	return nil
}

// notify sends the queue's used buffer notification if the driver wants
// one.
func (c *Console) notify(a *activation, qi int) {
	need, err := a.queues[qi].NeedsNotification(a.mem)
	if err != nil || !need {
		return
	}
	if err := a.notifiers[qi].Notify(); err != nil {
		c.log.Warn("virtio-console: notify", "queue", qi, "err", err)
	}
}

// pop pops the next chain of queue qi into ch. Malformed chains are
// completed with length 0 and skipped. It returns ok when ch holds a
// chain, and dead when the queue can no longer be served.
func (c *Console) pop(a *activation, qi int, ch *virtio.Chain) (ok, dead bool) {
	q := a.queues[qi]
	for {
		ok, err := q.PopInto(a.mem, ch)
		var ce *virtio.ChainError
		switch {
		case errors.As(err, &ce):
			if err := q.AddUsed(a.mem, ce.Head, 0); err != nil {
				return false, true
			}
			c.notify(a, qi)
			continue
		case err != nil:
			c.log.Error("virtio-console: queue stopped", "queue", qi, "err", err)
			return false, true
		}
		return ok, false
	}
}

// complete returns a chain with n bytes written; false means the queue is
// dead.
func (c *Console) complete(a *activation, qi int, head uint16, n uint32) bool {
	if err := a.queues[qi].AddUsed(a.mem, head, n); err != nil {
		c.log.Error("virtio-console: queue stopped", "queue", qi, "err", err)
		return false
	}
	return true
}
