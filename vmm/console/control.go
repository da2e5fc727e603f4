package console

import (
	"encoding/binary"

	"github.com/krunbench/krunbench/vmm/virtio"
)

// Control events (struct virtio_console_control.event).
const (
	EventDeviceReady = 0 // driver -> device: value 1 = ready
	EventPortAdd     = 1 // device -> driver: port id exists
	EventPortRemove  = 2 // device -> driver
	EventPortReady   = 3 // driver -> device: value 1 = port set up
	EventConsolePort = 4 // device -> driver: port id is a console (hvc)
	EventResize      = 5 // device -> driver: followed by the size
	EventPortOpen    = 6 // both ways: value 1 = open, 0 = closed
	EventPortName    = 7 // device -> driver: followed by the name
)

// ControlSize is the size of struct virtio_console_control.
const ControlSize = 8

// BadID is VIRTIO_CONSOLE_BAD_ID, the id of DEVICE_READY.
const BadID = 0xffffffff

// Control is a decoded control message.
type Control struct {
	ID    uint32
	Event uint16
	Value uint16
	// Payload follows the header: the size for RESIZE, the name for
	// PORT_NAME.
	Payload []byte
}

// Encode returns the message as sent on a control queue.
func (m Control) Encode() []byte {
	b := make([]byte, ControlSize, ControlSize+len(m.Payload))
	binary.LittleEndian.PutUint32(b[0:], m.ID)
	binary.LittleEndian.PutUint16(b[4:], m.Event)
	binary.LittleEndian.PutUint16(b[6:], m.Value)
	return append(b, m.Payload...)
}

// DecodeControl parses a control message; ok is false when b is shorter
// than the header.
func DecodeControl(b []byte) (m Control, ok bool) {
	if len(b) < ControlSize {
		return Control{}, false
	}
	return Control{
		ID:      binary.LittleEndian.Uint32(b[0:]),
		Event:   binary.LittleEndian.Uint16(b[4:]),
		Value:   binary.LittleEndian.Uint16(b[6:]),
		Payload: b[ControlSize:],
	}, true
}

// sendLocked queues a control message for the guest; a.mu is held.
func (c *Console) sendLocked(a *activation, m Control) {
	if len(a.ctrlOut) >= maxCtrlBacklog {
		c.log.Warn("virtio-console: control backlog full; message dropped", "event", m.Event, "id", m.ID)
		return
	}
	a.ctrlOut = append(a.ctrlOut, m.Encode())
}

// sendResizeLocked queues a RESIZE for port id with the current size,
// unless a dimension is zero; a.mu is held.
func (c *Console) sendResizeLocked(a *activation, id int) {
	cols, rows := c.Size()
	if cols == 0 || rows == 0 {
		return
	}
	size := make([]byte, 4)
	first, second := rows, cols
	if c.colsFirst {
		first, second = cols, rows
	}
	binary.LittleEndian.PutUint16(size[0:], first)
	binary.LittleEndian.PutUint16(size[2:], second)
	c.sendLocked(a, Control{ID: uint32(id), Event: EventResize, Payload: size})
}

// ctrlLoop serves both control queues: it handles the driver's messages
// and delivers queued device messages as receive buffers appear.
func (c *Console) ctrlLoop(a *activation) {
	defer a.wg.Done()
	var ch virtio.Chain
	for c.ctrlTx(a, &ch) && c.ctrlRx(a, &ch) {
		select {
		case <-a.ctrlWake:
		case <-a.stop:
			return
		}
	}
}

// ctrlTx handles every message the driver has queued; false means the
// queue is dead.
func (c *Console) ctrlTx(a *activation, ch *virtio.Chain) bool {
	var hdr [ControlSize]byte
	for {
		ok, dead := c.pop(a, ctrlTxQueue, ch)
		if dead {
			return false
		}
		if !ok {
			return true
		}
		n, _ := ch.Reader().Read(hdr[:])
		if m, ok := DecodeControl(hdr[:n]); ok {
			c.handle(a, m)
		} else {
			c.log.Warn("virtio-console: short control message", "len", n)
		}
		// Returned after handling, so a driver that waits for its
		// message to come back knows it took effect.
		if !c.complete(a, ctrlTxQueue, ch.Head, 0) {
			return false
		}
		c.notify(a, ctrlTxQueue)
	}
}

// handle acts on one driver message. The handshake (Linux): the driver
// sends DEVICE_READY; the device adds every port; the driver answers each
// PORT_ADD with PORT_READY; the device then marks console ports, reports
// the host side open, sends the console size and the port name; the
// driver sends PORT_OPEN when the guest opens the port.
func (c *Console) handle(a *activation, m Control) {
	if m.Event != EventDeviceReady && m.ID >= uint32(len(c.ports)) {
		c.log.Warn("virtio-console: control message for unknown port", "id", m.ID, "event", m.Event)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch m.Event {
	case EventDeviceReady:
		if m.Value != 1 {
			c.log.Warn("virtio-console: driver failed to initialise the device")
			return
		}
		for _, p := range c.ports {
			c.sendLocked(a, Control{ID: uint32(p.id), Event: EventPortAdd})
		}
	case EventPortReady:
		if m.Value != 1 {
			c.log.Warn("virtio-console: driver failed to set up port", "id", m.ID)
			return
		}
		p := c.ports[m.ID]
		if p.console {
			c.sendLocked(a, Control{ID: m.ID, Event: EventConsolePort, Value: 1})
		}
		c.sendLocked(a, Control{ID: m.ID, Event: EventPortOpen, Value: 1})
		a.ready[m.ID] = true
		if p.console && int(m.ID) == c.consoleID {
			c.sendResizeLocked(a, int(m.ID))
		}
		if p.name != "" {
			c.sendLocked(a, Control{ID: m.ID, Event: EventPortName, Payload: []byte(p.name)})
		}
	case EventPortOpen:
		a.open[m.ID].Store(m.Value == 1)
		if q := a.kicks[rxQueue(int(m.ID))]; m.Value == 1 {
			wake(q)
		}
	default:
		c.log.Debug("virtio-console: ignoring control event", "event", m.Event, "id", m.ID)
	}
}

// ctrlRx delivers queued device messages, one per receive buffer; false
// means the queue is dead.
func (c *Console) ctrlRx(a *activation, ch *virtio.Chain) bool {
	used := false
	for {
		a.mu.Lock()
		if len(a.ctrlOut) == 0 {
			a.mu.Unlock()
			break
		}
		msg := a.ctrlOut[0]
		a.mu.Unlock()
		ok, dead := c.pop(a, ctrlRxQueue, ch)
		if dead {
			return false
		}
		if !ok {
			break
		}
		w := ch.Writer()
		n, _ := w.Write(msg)
		if n < len(msg) {
			c.log.Warn("virtio-console: control receive buffer too small; message truncated", "len", len(msg), "buffer", ch.WritableLen)
		}
		if !c.complete(a, ctrlRxQueue, ch.Head, uint32(n)) {
			return false
		}
		used = true
		a.mu.Lock()
		a.ctrlOut[0] = nil
		a.ctrlOut = a.ctrlOut[1:]
		a.mu.Unlock()
	}
	if used {
		c.notify(a, ctrlRxQueue)
	}
	return true
}
