package mmio_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// echoDev is a mock device: every chain popped from any queue has its
// readable bytes copied into its writable buffers. Kicks are served
// synchronously inside QueueNotify.
type echoDev struct {
	features uint64
	nq       int
	maxSize  uint16
	fail     error // returned by Activate

	mu          sync.Mutex
	acked       uint64
	ackCalls    int
	activations int
	resets      int
	mem         virtio.GuestMemory
	queues      []*virtio.Queue
	notifiers   []virtio.Notifier
	config      [16]byte
	cfgNotifier virtio.Notifier
}

const echoID = 0x2a

func newEcho(nq int) *echoDev {
	d := &echoDev{features: 1<<virtio.FeatureVersion1 | 1<<virtio.FeatureEventIdx | 1<<3, nq: nq, maxSize: 64}
	for i := range d.config {
		d.config[i] = byte(0xa0 + i)
	}
	return d
}

func (d *echoDev) Type() uint32     { return echoID }
func (d *echoDev) Features() uint64 { return d.features }
func (d *echoDev) AckFeatures(f uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acked, d.ackCalls = f, d.ackCalls+1
}
func (d *echoDev) ReadConfig(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(data)
	if off < uint64(len(d.config)) {
		copy(data, d.config[off:])
	}
}
func (d *echoDev) WriteConfig(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < uint64(len(d.config)) {
		copy(d.config[off:], data)
	}
}
func (d *echoDev) NumQueues() int       { return d.nq }
func (d *echoDev) MaxQueueSize() uint16 { return d.maxSize }
func (d *echoDev) SetConfigNotifier(n virtio.Notifier) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfgNotifier = n
}

func (d *echoDev) Activate(mem virtio.GuestMemory, queues []*virtio.Queue, notifiers []virtio.Notifier) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if len(queues) != d.nq || len(notifiers) != d.nq {
		return fmt.Errorf("echo: %d queues, %d notifiers", len(queues), len(notifiers))
	}
	d.activations++
	d.mem, d.queues, d.notifiers = mem, queues, notifiers
	return nil
}

func (d *echoDev) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resets++
	d.mem, d.queues, d.notifiers = nil, nil, nil
}

func (d *echoDev) QueueNotify(i int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queues == nil || i >= len(d.queues) || d.queues[i] == nil {
		return
	}
	q := d.queues[i]
	for {
		c, err := q.Pop(d.mem)
		var ce *virtio.ChainError
		if errors.As(err, &ce) {
			q.AddUsed(d.mem, ce.Head, 0)
			continue
		}
		if c == nil || err != nil {
			break
		}
		buf := make([]byte, c.ReadableLen)
		c.Reader().Read(buf)
		w := c.Writer()
		w.Write(buf)
		q.AddUsed(d.mem, c.Head, uint32(w.Written()))
	}
	if need, _ := q.NeedsNotification(d.mem); need {
		d.notifiers[i].Notify()
	}
}

// rig is a register-level driver in front of a transport.
type rig struct {
	t    *testing.T
	tr   *mmio.Transport
	irqs atomic.Int32
}

func newRig(t *testing.T, dev virtio.Device, mem virtio.GuestMemory) *rig {
	r := &rig{t: t}
	r.tr = mmio.New(dev, mem, mmio.Options{Interrupt: mmio.InterruptFunc(func() error { r.irqs.Add(1); return nil })})
	return r
}

func (r *rig) r32(off uint64) uint32 {
	b := make([]byte, 4)
	r.tr.Read(off, b)
	return binary.LittleEndian.Uint32(b)
}

func (r *rig) w32(off uint64, v uint32) {
	r.tr.Write(off, binary.LittleEndian.AppendUint32(nil, v))
}

func (r *rig) addStatus(bits uint32) { r.w32(mmio.RegStatus, r.r32(mmio.RegStatus)|bits) }

func (r *rig) offered() uint64 {
	r.w32(mmio.RegDeviceFeaturesSel, 1)
	hi := r.r32(mmio.RegDeviceFeatures)
	r.w32(mmio.RegDeviceFeaturesSel, 0)
	return uint64(hi)<<32 | uint64(r.r32(mmio.RegDeviceFeatures))
}

func (r *rig) writeFeatures(f uint64) {
	r.w32(mmio.RegDriverFeaturesSel, 1)
	r.w32(mmio.RegDriverFeatures, uint32(f>>32))
	r.w32(mmio.RegDriverFeaturesSel, 0)
	r.w32(mmio.RegDriverFeatures, uint32(f))
}

// negotiate runs Linux's virtio_dev_probe up to FEATURES_OK (reset,
// ACKNOWLEDGE, DRIVER, features) and reports whether the device kept
// FEATURES_OK set.
func (r *rig) negotiate(accept func(offered uint64) uint64) bool {
	r.t.Helper()
	r.w32(mmio.RegStatus, 0)
	if r.r32(mmio.RegStatus) != 0 {
		r.t.Fatal("status not 0 after reset")
	}
	if m, v := r.r32(mmio.RegMagicValue), r.r32(mmio.RegVersion); m != mmio.MagicValue || v != 2 {
		r.t.Fatalf("magic %#x version %d", m, v)
	}
	r.addStatus(virtio.StatusAcknowledge)
	r.addStatus(virtio.StatusDriver)
	r.writeFeatures(accept(r.offered()))
	r.addStatus(virtio.StatusFeaturesOK)
	return r.r32(mmio.RegStatus)&virtio.StatusFeaturesOK != 0
}

// setupQueue is vm_setup_vq: select, check not ready, read the max, program
// size and ring addresses from the mock driver's layout, enable.
func (r *rig) setupQueue(i uint32, d *virtiotest.Driver) {
	r.t.Helper()
	r.w32(mmio.RegQueueSel, i)
	if r.r32(mmio.RegQueueReady) != 0 {
		r.t.Fatalf("queue %d already ready", i)
	}
	if max := r.r32(mmio.RegQueueNumMax); max < uint32(d.Size) {
		r.t.Fatalf("queue %d: QueueNumMax %d < %d", i, max, d.Size)
	}
	r.w32(mmio.RegQueueNum, uint32(d.Size))
	r.w32(mmio.RegQueueDescLow, uint32(d.Desc))
	r.w32(mmio.RegQueueDescHigh, uint32(d.Desc>>32))
	r.w32(mmio.RegQueueDriverLow, uint32(d.Avail))
	r.w32(mmio.RegQueueDriverHigh, uint32(d.Avail>>32))
	r.w32(mmio.RegQueueDeviceLow, uint32(d.Used))
	r.w32(mmio.RegQueueDeviceHigh, uint32(d.Used>>32))
	r.w32(mmio.RegQueueReady, 1)
	if r.r32(mmio.RegQueueReady) != 1 {
		r.t.Fatalf("queue %d not ready after enabling", i)
	}
}

// probe runs the whole Linux probe: negotiation accepting every offered
// feature, queue setup for each driver (queue i = drivers[i], nil skipped)
// and DRIVER_OK. It returns the final status.
func (r *rig) probe(drivers ...*virtiotest.Driver) uint32 {
	r.t.Helper()
	if !r.negotiate(func(f uint64) uint64 { return f }) {
		r.t.Fatal("FEATURES_OK refused")
	}
	for i, d := range drivers {
		if d != nil {
			r.setupQueue(uint32(i), d)
		}
	}
	r.addStatus(virtio.StatusDriverOK)
	return r.r32(mmio.RegStatus)
}

// waitUsed polls the used ring until it holds an element for head.
func waitUsed(t *testing.T, d *virtiotest.Driver, head uint16) virtiotest.UsedElem {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range d.TakeUsed() {
			if u.ID == uint32(head) {
				return u
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("head %d not returned on the used ring within 5s", head)
	return virtiotest.UsedElem{}
}

// writable returns the bytes the device wrote into the chain's writable
// buffers (n of them).
func writable(d *virtiotest.Driver, p virtiotest.Placed, n uint32) []byte {
	var out []byte
	for i, b := range p.Bufs {
		if b.Write {
			out = append(out, d.Read(p.Addrs[i], uint64(len(b.Data)))...)
		}
	}
	return out[:n]
}
