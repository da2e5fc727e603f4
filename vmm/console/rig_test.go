package console_test

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/console"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// The guest here is the driver-side mock of vmm/virtio (one ring area per
// queue in one guest memory), driven the way Linux's virtio_console
// driver drives the device.

const (
	ctrlRx = 2
	ctrlTx = 3
)

func rxq(port int) int {
	if port == 0 {
		return 0
	}
	return 2 + 2*port
}

func txq(port int) int { return rxq(port) + 1 }

// host is the host side of a port made of two pipes: what the test writes
// to In the device reads; what the device writes the test reads from Out.
type host struct {
	In  *io.PipeWriter
	Out *io.PipeReader
	dev struct {
		io.Reader
		io.Writer
	}
}

func newHost(t *testing.T) *host {
	h := &host{}
	var r *io.PipeReader
	var w *io.PipeWriter
	r, h.In = io.Pipe()
	h.Out, w = io.Pipe()
	h.dev.Reader, h.dev.Writer = r, w
	t.Cleanup(func() { h.In.Close(); h.Out.Close() })
	return h
}

// Side returns the io.ReadWriter to hand to the device.
func (h *host) Side() io.ReadWriter { return &h.dev }

// guest is the mock driver.
type guest struct {
	t      *testing.T
	con    *console.Console
	m      *virtiotest.Multi
	irqs   []atomic.Int32
	placed []map[uint16]virtiotest.Placed // writable chains posted, per queue
}

const multiFeatures = 1<<virtio.FeatureVersion1 | 1<<virtio.FeatureEventIdx | 1<<console.FeatureSize | 1<<console.FeatureMultiport

// newGuest creates the console, negotiates features and activates it with
// every queue enabled (only queues 0 and 1 without MULTIPORT).
func newGuest(t *testing.T, opts console.Options, features uint64) *guest {
	t.Helper()
	con, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	n := con.NumQueues()
	g := &guest{t: t, con: con, irqs: make([]atomic.Int32, n), placed: make([]map[uint16]virtiotest.Placed, n)}
	g.m = virtiotest.NewMulti(virtiotest.Config{QueueSize: 64, MemSize: uint64(n) << 19, EventIdx: features&(1<<virtio.FeatureEventIdx) != 0}, n)
	queues := make([]*virtio.Queue, n)
	notifiers := make([]virtio.Notifier, n)
	for i := range n {
		g.placed[i] = map[uint16]virtiotest.Placed{}
		notifiers[i] = virtio.NotifierFunc(func() error { g.irqs[i].Add(1); return nil })
		if features&(1<<console.FeatureMultiport) != 0 || i < 2 {
			queues[i] = g.m.Drivers[i].Queue()
		}
	}
	con.AckFeatures(features)
	if err := con.Activate(g.m.Mem, queues, notifiers); err != nil {
		t.Fatal(err)
	}
	return g
}

// post adds one writable buffer per size to queue qi and kicks it.
func (g *guest) post(qi int, sizes ...int) {
	g.t.Helper()
	d := g.m.Drivers[qi]
	for _, n := range sizes {
		p, err := d.AddChain(virtiotest.W(n))
		if err != nil {
			g.t.Fatal(err)
		}
		g.placed[qi][p.Head] = p
	}
	d.Publish()
	g.con.QueueNotify(qi)
}

// collect returns the data of the used buffers of queue qi, in used-ring
// order.
func (g *guest) collect(qi int) [][]byte {
	d := g.m.Drivers[qi]
	var out [][]byte
	for _, u := range d.TakeUsed() {
		p, ok := g.placed[qi][uint16(u.ID)]
		if !ok {
			g.t.Fatalf("queue %d returned head %d that was not posted", qi, u.ID)
		}
		delete(g.placed[qi], uint16(u.ID))
		out = append(out, d.Read(p.Addrs[0], uint64(u.Len)))
	}
	return out
}

// send places a readable chain on queue qi, kicks, and waits for the
// device to return it.
func (g *guest) send(qi int, data []byte) {
	g.t.Helper()
	d := g.m.Drivers[qi]
	p, err := d.AddChain(virtiotest.R(data))
	if err != nil {
		g.t.Fatal(err)
	}
	d.Publish()
	g.con.QueueNotify(qi)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range d.TakeUsed() {
			if u.ID == uint32(p.Head) {
				return
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	g.t.Fatalf("queue %d: chain not returned", qi)
}

func (g *guest) sendCtrl(id uint32, event, value uint16) {
	g.t.Helper()
	g.send(ctrlTx, console.Control{ID: id, Event: event, Value: value}.Encode())
}

// ctrl waits for n control messages from the device and tops the control
// receive queue up again.
func (g *guest) ctrl(n int) []console.Control {
	g.t.Helper()
	var msgs []console.Control
	deadline := time.Now().Add(5 * time.Second)
	for len(msgs) < n && time.Now().Before(deadline) {
		got := g.collect(ctrlRx)
		for _, b := range got {
			m, ok := console.DecodeControl(b)
			if !ok {
				g.t.Fatalf("short control message %x", b)
			}
			msgs = append(msgs, m)
		}
		if len(got) > 0 {
			sizes := make([]int, len(got))
			for i := range sizes {
				sizes[i] = 4096
			}
			g.post(ctrlRx, sizes...)
		}
		time.Sleep(100 * time.Microsecond)
	}
	if len(msgs) != n {
		g.t.Fatalf("got %d control messages, want %d: %+v", len(msgs), n, msgs)
	}
	return msgs
}

// noCtrl checks that no control message arrives for a while.
func (g *guest) noCtrl() {
	g.t.Helper()
	time.Sleep(20 * time.Millisecond)
	if got := g.collect(ctrlRx); len(got) != 0 {
		g.t.Fatalf("unexpected control messages %x", got)
	}
}

// receive collects n bytes from port's receive queue, keeping count
// buffers of size bytes posted.
func (g *guest) receive(port, n, count, size int) []byte {
	g.t.Helper()
	qi := rxq(port)
	var out []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		if missing := count - len(g.placed[qi]); missing > 0 {
			sizes := make([]int, missing)
			for i := range sizes {
				sizes[i] = size
			}
			g.post(qi, sizes...)
		}
		got := g.collect(qi)
		for _, b := range got {
			out = append(out, b...)
		}
		if len(got) == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if len(out) != n {
		g.t.Fatalf("port %d: received %d bytes, want %d", port, len(out), n)
	}
	return out
}

// handshake runs Linux's multiport probe for every port: control buffers,
// DEVICE_READY, PORT_READY for each PORT_ADD. It returns the messages the
// device sent after each PORT_READY.
func (g *guest) handshake(nports int, perPort []int) [][]console.Control {
	g.t.Helper()
	sizes := make([]int, 16)
	for i := range sizes {
		sizes[i] = 4096
	}
	g.post(ctrlRx, sizes...)
	g.sendCtrl(console.BadID, console.EventDeviceReady, 1)
	adds := g.ctrl(nports)
	var out [][]console.Control
	for i, m := range adds {
		if m.Event != console.EventPortAdd || m.ID != uint32(i) {
			g.t.Fatalf("message %d after DEVICE_READY: %+v, want PORT_ADD %d", i, m, i)
		}
		g.sendCtrl(m.ID, console.EventPortReady, 1)
		out = append(out, g.ctrl(perPort[i]))
	}
	return out
}

// readN reads exactly n bytes from r within 5 seconds.
func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		ch <- result{b, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatal(res.err)
		}
		return res.b
	case <-time.After(5 * time.Second):
		t.Fatalf("host side: %d bytes not written within 5s", n)
		return nil
	}
}
