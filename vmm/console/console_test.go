package console_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/console"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

func describe(ms []console.Control) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%d:%d=%d%q", m.ID, m.Event, m.Value, m.Payload))
	}
	return strings.Join(parts, " ")
}

func size(rowsFirst bool, cols, rows uint16) []byte {
	if rowsFirst {
		return binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, rows), cols)
	}
	return binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, cols), rows)
}

func TestNewValidation(t *testing.T) {
	if _, err := console.New(console.Options{}); err == nil {
		t.Error("no ports accepted")
	}
	if _, err := console.New(console.Options{Ports: []console.Port{{Name: "a\x00b"}}}); err == nil {
		t.Error("name with NUL accepted")
	}
	if _, err := console.New(console.Options{Ports: make([]console.Port, console.MaxPorts+1)}); err == nil {
		t.Error("too many ports accepted")
	}
}

func TestConfigSpaceAndQueues(t *testing.T) {
	c, err := console.New(console.Options{Ports: []console.Port{{Console: true}, {Name: "krun-stdout"}, {Name: "krun-stderr"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Type() != virtio.DeviceIDConsole || c.NumQueues() != 8 || c.MaxQueueSize() != console.QueueSize {
		t.Fatalf("type %d queues %d max %d", c.Type(), c.NumQueues(), c.MaxQueueSize())
	}
	want := uint64(1<<virtio.FeatureVersion1 | 1<<virtio.FeatureEventIdx | 1<<console.FeatureSize | 1<<console.FeatureMultiport)
	if c.Features() != want {
		t.Fatalf("features %#x", c.Features())
	}
	c.Resize(100, 30)
	cfg := make([]byte, 16)
	c.ReadConfig(0, cfg)
	if binary.LittleEndian.Uint16(cfg) != 100 || binary.LittleEndian.Uint16(cfg[2:]) != 30 ||
		binary.LittleEndian.Uint32(cfg[4:]) != 3 || !bytes.Equal(cfg[8:], make([]byte, 8)) {
		t.Fatalf("config %x", cfg)
	}
	b := make([]byte, 2)
	c.ReadConfig(4, b)
	if binary.LittleEndian.Uint16(b) != 3 {
		t.Fatalf("max_nr_ports low half %x", b)
	}
	c.WriteConfig(0, []byte{1, 2})
	c.ReadConfig(0, b)
	if binary.LittleEndian.Uint16(b) != 100 {
		t.Fatal("config write changed cols")
	}
	if err := c.Activate(nil, nil, nil); err == nil {
		t.Fatal("activation with no queues accepted")
	}
}

func TestControlHandshake(t *testing.T) {
	for _, colsFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("colsFirst=%v", colsFirst), func(t *testing.T) {
			opts := console.Options{ResizeColsFirst: colsFirst, Ports: []console.Port{
				{Console: true, Host: newHost(t).Side()},
				{Name: "krun-stdout", Host: newHost(t).Side()},
				{Name: "krun-stdin", Host: newHost(t).Side()},
				{},
			}}
			g := newGuest(t, opts, multiFeatures)
			g.con.Resize(80, 24)
			per := g.handshake(4, []int{3, 2, 2, 1})
			wantSize := size(!colsFirst, 80, 24)
			want := []string{
				describe([]console.Control{
					{ID: 0, Event: console.EventConsolePort, Value: 1},
					{ID: 0, Event: console.EventPortOpen, Value: 1},
					{ID: 0, Event: console.EventResize, Payload: wantSize},
				}),
				describe([]console.Control{
					{ID: 1, Event: console.EventPortOpen, Value: 1},
					{ID: 1, Event: console.EventPortName, Payload: []byte("krun-stdout")},
				}),
				describe([]console.Control{
					{ID: 2, Event: console.EventPortOpen, Value: 1},
					{ID: 2, Event: console.EventPortName, Payload: []byte("krun-stdin")},
				}),
				describe([]console.Control{{ID: 3, Event: console.EventPortOpen, Value: 1}}),
			}
			for i := range per {
				if got := describe(per[i]); got != want[i] {
					t.Errorf("after PORT_READY %d:\n got %s\nwant %s", i, got, want[i])
				}
			}
			// A terminal size change reaches the guest as RESIZE.
			g.con.Resize(132, 43)
			got := g.ctrl(1)
			if got[0].Event != console.EventResize || got[0].ID != 0 || !bytes.Equal(got[0].Payload, size(!colsFirst, 132, 43)) {
				t.Fatalf("resize message %s", describe(got))
			}
			if g.irqs[ctrlRx].Load() == 0 {
				t.Fatal("control messages without an interrupt")
			}
			// A size with a zero dimension is not sent.
			g.con.Resize(0, 10)
			g.noCtrl()
		})
	}
}

func TestHostileControlMessages(t *testing.T) {
	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true}, idlePort}}, multiFeatures)
	g.post(ctrlRx, 4096, 4096, 4096, 4096)
	g.sendCtrl(console.BadID, console.EventDeviceReady, 0) // driver failed: nothing
	g.sendCtrl(99, console.EventPortReady, 1)              // unknown port
	g.sendCtrl(0, console.EventPortReady, 0)               // port failed
	g.sendCtrl(0, 42, 1)                                   // unknown event
	g.send(ctrlTx, []byte{1, 2, 3})                        // short message
	g.send(ctrlTx, nil)                                    // empty chain is rejected, returned
	g.noCtrl()
	// A bad chain on the control queue does not stop it.
	d := g.m.Drivers[ctrlTx]
	head, _ := d.AllocDesc()
	d.SetDesc(head, 1<<40, 8, 0, 0)
	d.PushHead(head)
	d.Publish()
	g.sendCtrl(console.BadID, console.EventDeviceReady, 1)
	if m := g.ctrl(2); m[0].Event != console.EventPortAdd || m[0].ID != 0 || m[1].Event != console.EventPortAdd || m[1].ID != 1 {
		t.Fatalf("after hostile messages: %s", describe(m))
	}
}

func TestPort0BothWays(t *testing.T) {
	h := newHost(t)
	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}, idlePort}}, multiFeatures)
	g.handshake(2, []int{2, 2})
	// Host input before the guest opens the port waits.
	go h.In.Write([]byte("typed early"))
	time.Sleep(20 * time.Millisecond)
	g.post(rxq(0), 64)
	time.Sleep(20 * time.Millisecond)
	if got := g.collect(rxq(0)); len(got) != 0 {
		t.Fatalf("data delivered before the guest opened the port: %q", got)
	}
	g.sendCtrl(0, console.EventPortOpen, 1)
	if got := g.receive(0, 11, 1, 64); string(got) != "typed early" {
		t.Fatalf("guest received %q", got)
	}
	if g.irqs[rxq(0)].Load() == 0 {
		t.Fatal("no receive interrupt")
	}
	go h.In.Write([]byte("more"))
	if got := g.receive(0, 4, 1, 64); string(got) != "more" {
		t.Fatalf("guest received %q", got)
	}
	g.send(txq(0), []byte("hello from the guest\r\n"))
	if got := readN(t, h.Out, 22); string(got) != "hello from the guest\r\n" {
		t.Fatalf("host received %q", got)
	}
	// A closed port gets nothing until it is opened again.
	g.sendCtrl(0, console.EventPortOpen, 0)
	go h.In.Write([]byte("while closed"))
	time.Sleep(20 * time.Millisecond)
	if got := g.collect(rxq(0)); len(got) != 0 {
		t.Fatalf("data delivered to a closed port: %q", got)
	}
	g.sendCtrl(0, console.EventPortOpen, 1)
	if got := g.receive(0, 12, 1, 64); string(got) != "while closed" {
		t.Fatalf("guest received %q", got)
	}
}

func TestLargeTransferSmallBuffers(t *testing.T) {
	h := newHost(t)
	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}, idlePort}}, multiFeatures)
	g.handshake(2, []int{2, 2})
	data := make([]byte, 100<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	done := make(chan error, 1)
	go func() {
		// Odd write sizes so that host reads and guest buffers never align.
		rest := data
		for len(rest) > 0 {
			n := min(len(rest), 1+rng.IntN(9000))
			if _, err := h.In.Write(rest[:n]); err != nil {
				done <- err
				return
			}
			rest = rest[n:]
		}
		done <- nil
	}()
	// Until the port is open the host is read only up to the pending
	// limit: the writer is held back, nothing is lost.
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("host wrote 100 KiB with no guest reading (err %v): no backpressure", err)
	default:
	}
	g.sendCtrl(0, console.EventPortOpen, 1)
	got := g.receive(0, len(data), 8, 61)
	if !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && got[i] == data[i] {
			i++
		}
		t.Fatalf("100 KiB transfer differs from byte %d", i)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Guest to host, many small chains. The host reads slowly at first:
	// the guest's chains are held back, not dropped.
	var want bytes.Buffer
	for i := range 300 {
		want.Write(bytes.Repeat([]byte{byte(i)}, 1+i%37))
	}
	received := make(chan []byte, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		b := make([]byte, want.Len())
		io.ReadFull(h.Out, b)
		received <- b
	}()
	for i := range 300 {
		g.send(txq(0), bytes.Repeat([]byte{byte(i)}, 1+i%37))
	}
	select {
	case got := <-received:
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatal("guest to host stream differs")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("host did not receive the guest's output")
	}
}

func TestNamedPorts(t *testing.T) {
	hs := []*host{newHost(t), newHost(t), newHost(t)}
	g := newGuest(t, console.Options{Ports: []console.Port{
		{Console: true, Host: hs[0].Side()},
		{Name: "krun-stdout", Host: hs[1].Side()},
		{Name: "krun-stdin", Host: hs[2].Side()},
	}}, multiFeatures)
	g.handshake(3, []int{2, 2, 2})
	g.send(txq(1), []byte("out\n"))
	if got := readN(t, hs[1].Out, 4); string(got) != "out\n" {
		t.Fatalf("krun-stdout host got %q", got)
	}
	g.sendCtrl(2, console.EventPortOpen, 1)
	go hs[2].In.Write([]byte("in"))
	if got := g.receive(2, 2, 2, 16); string(got) != "in" {
		t.Fatalf("krun-stdin guest got %q", got)
	}
	// Input for port 0 does not leak into port 2 and vice versa.
	if got := g.collect(rxq(0)); len(got) != 0 {
		t.Fatal("port 0 received port 2's data")
	}
}

// idlePort is a second port with no host side: multiport tests need one,
// since a console with a single port does not offer MULTIPORT.
var idlePort = console.Port{Name: "krun-stderr"}

// TestLonePortOffersNoMultiport: with port 0 alone, Linux must add it in
// probe (see Console.Features), so MULTIPORT is not offered.
func TestLonePortOffersNoMultiport(t *testing.T) {
	c, err := console.New(console.Options{Ports: []console.Port{{Console: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Features()&(1<<console.FeatureMultiport) != 0 {
		t.Fatalf("features %#x offer MULTIPORT for a single port", c.Features())
	}
}

func TestWithoutMultiport(t *testing.T) {
	h := newHost(t)
	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}, {Name: "unused"}}},
		1<<virtio.FeatureVersion1|1<<console.FeatureSize)
	var cfgChanges int
	g.con.SetConfigNotifier(virtio.NotifierFunc(func() error { cfgChanges++; return nil }))
	go h.In.Write([]byte("no handshake needed"))
	if got := g.receive(0, 19, 4, 8); string(got) != "no handshake needed" {
		t.Fatalf("guest got %q", got)
	}
	g.send(txq(0), []byte("out"))
	if got := readN(t, h.Out, 3); string(got) != "out" {
		t.Fatalf("host got %q", got)
	}
	g.con.Resize(120, 40)
	cfg := make([]byte, 4)
	g.con.ReadConfig(0, cfg)
	if cfgChanges != 1 || binary.LittleEndian.Uint16(cfg) != 120 || binary.LittleEndian.Uint16(cfg[2:]) != 40 {
		t.Fatalf("config changes %d, config %x", cfgChanges, cfg)
	}

	// Reset keeps undelivered host bytes for the next activation.
	g.con.Reset()
	go h.In.Write([]byte("after reset"))
	time.Sleep(20 * time.Millisecond)
	g.con.QueueNotify(0) // ignored while reset
	queues := []*virtio.Queue{g.m.Drivers[0].Queue(), g.m.Drivers[1].Queue(), nil, nil, nil, nil}
	queues[0].SetNextAvail(g.m.Drivers[0].AvailIdx())
	queues[0].SetNextUsed(g.m.Drivers[0].UsedIdx())
	notifiers := make([]virtio.Notifier, 6)
	for i := range notifiers {
		notifiers[i] = virtio.NotifierFunc(func() error { return nil })
	}
	clear(g.placed[0]) // buffers posted before the reset are gone with it
	if err := g.con.Activate(g.m.Mem, queues, notifiers); err != nil {
		t.Fatal(err)
	}
	if got := g.receive(0, 11, 2, 64); string(got) != "after reset" {
		t.Fatalf("after reset the guest got %q", got)
	}
}

func TestCloseStopsActivation(t *testing.T) {
	h := newHost(t)
	c, err := console.New(console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	queues := make([]*virtio.Queue, c.NumQueues())
	if err := c.Activate(nil, queues, make([]virtio.Notifier, len(queues))); err != console.ErrClosed {
		t.Fatalf("Activate after Close = %v", err)
	}
	c.QueueNotify(0)
	c.Resize(1, 1)
}

// TestTransmitBacklogIsBounded: with a host side that does not read, the
// device takes at most TxBacklog bytes of the guest's transmit buffers
// (issue 11 item 9: it used to take 8 chains of up to 1 MiB each, plus
// one, per port; here 9 chains, 144 KiB); the rest stay with the guest.
// Once the host reads, every byte arrives, in order. The check that no
// more are taken waits a moment: a slow machine can only make the device
// take fewer.
func TestTransmitBacklogIsBounded(t *testing.T) {
	const chainSize, chains = 16 << 10, 20
	h, _, d, want := sendTxBacklog(t, chains, chainSize, 'a')
	returned := 0
	for deadline := time.Now().Add(10 * time.Second); returned*chainSize < console.TxBacklog; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d chains returned with the host not reading, want %d", returned, console.TxBacklog/chainSize)
		}
		returned += len(d.TakeUsed())
	}
	time.Sleep(200 * time.Millisecond)
	returned += len(d.TakeUsed())
	if returned*chainSize > console.TxBacklog {
		t.Fatalf("device took %d chains (%d KiB) while the host read nothing: more than TxBacklog (%d KiB)", returned, returned*chainSize>>10, console.TxBacklog>>10)
	}
	got := readN(t, h.Out, want.Len())
	if !bytes.Equal(got, want.Bytes()) {
		i := 0
		for i < len(got) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("guest to host stream differs from byte %d (chain %d)", i, i/chainSize)
	}
	for deadline := time.Now().Add(10 * time.Second); returned < chains; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d chains returned after the host read everything", returned, chains)
		}
		returned += len(d.TakeUsed())
	}
}

// TestHostEndOfInputClosesPort: when the host side of a port ends (its
// Read returns io.EOF), the device delivers every byte before and then
// reports the port closed on the host side (PORT_OPEN 0), which Linux
// turns into a read of 0 bytes: the workload sees the end of its input.
func TestHostEndOfInputClosesPort(t *testing.T) {
	hs := []*host{newHost(t), newHost(t)}
	g := newGuest(t, console.Options{Ports: []console.Port{
		{Console: true, Host: hs[0].Side()},
		{Name: "krun-stdin", Host: hs[1].Side()},
	}}, multiFeatures)
	g.handshake(2, []int{2, 2})
	if _, err := hs[1].In.Write([]byte("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	hs[1].In.Close()
	g.sendCtrl(1, console.EventPortOpen, 1)
	// No receive buffers yet: the bytes are pending, so the port must
	// not be closed yet.
	g.noCtrl()
	if got := g.receive(1, 4, 1, 2); string(got) != "a\nb\n" {
		t.Fatalf("guest got %q", got)
	}
	m := g.ctrl(1)
	if m[0].ID != 1 || m[0].Event != console.EventPortOpen || m[0].Value != 0 {
		t.Fatalf("after the input's end: %s, want PORT_OPEN 0 for port 1", describe(m))
	}
	// Once only, and not for port 0, whose host side is still there.
	g.noCtrl()
}

// TestFlushedAfterBacklogWritten: after Close, Flushed waits until the
// guest's last output, taken from the guest but not yet written to a slow
// host side, has all been written; only then may the host side be closed
// without losing it (the kvm engine closes the pty then).
func TestFlushedAfterBacklogWritten(t *testing.T) {
	const chainSize, chains = 16 << 10, 3
	h, g, d, want := sendTxBacklog(t, chains, chainSize, 'k')
	returned := 0
	for deadline := time.Now().Add(10 * time.Second); returned < chains; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d chains taken from the guest", returned, chains)
		}
		returned += len(d.TakeUsed())
	}
	g.con.Close()
	select {
	case <-g.con.Flushed():
		t.Fatal("Flushed before the host side took the backlog")
	default:
	}
	got := readN(t, h.Out, want.Len())
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("backlog written after Close differs from what the guest sent")
	}
	select {
	case <-g.con.Flushed():
	case <-time.After(30 * time.Second):
		t.Fatal("Flushed not closed after the backlog was written")
	}
}

// sendTxBacklog starts a one-port console whose host side reads nothing
// yet, and has the guest queue chains transmit buffers of chainSize bytes
// each (chain i filled with the byte first+i) and notify the device. It
// returns the rig, the transmit queue's driver and the bytes sent, in order.
func sendTxBacklog(t *testing.T, chains, chainSize int, first byte) (*host, *guest, *virtiotest.Driver, *bytes.Buffer) {
	t.Helper()
	h := newHost(t)
	g := newGuest(t, console.Options{Ports: []console.Port{{Console: true, Host: h.Side()}}}, 1<<virtio.FeatureVersion1)
	d := g.m.Drivers[txq(0)]
	var want bytes.Buffer
	for i := range chains {
		data := bytes.Repeat([]byte{first + byte(i)}, chainSize)
		want.Write(data)
		if _, err := d.AddChain(virtiotest.R(data)); err != nil {
			t.Fatal(err)
		}
	}
	d.Publish()
	g.con.QueueNotify(txq(0))
	return h, g, d, &want
}
