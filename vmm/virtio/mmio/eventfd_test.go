package mmio_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/mmio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

func signal(t *testing.T, fd int) {
	t.Helper()
	if _, err := unix.Write(fd, binary.NativeEndian.AppendUint64(nil, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestIoeventfdKicks delivers kicks the way KVM_IOEVENTFD does: by
// signalling the queue's eventfd instead of writing QueueNotify.
func TestIoeventfdKicks(t *testing.T) {
	dev := newEcho(2)
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 8}, 2)
	r := newRig(t, dev, m.Mem)
	fds, err := mmio.NewEventfds(r.tr.NumQueues())
	if err != nil {
		t.Fatal(err)
	}
	defer mmio.CloseEventfds(fds)
	srv, err := r.tr.ServeIoeventfds(fds)
	if err != nil {
		t.Fatal(err)
	}
	if r.tr.NotifyOffset() != 0x50 {
		t.Fatalf("NotifyOffset %#x", r.tr.NotifyOffset())
	}
	r.probe(m.Drivers...)
	for round := range 3 {
		for i, d := range m.Drivers {
			msg := []byte{byte('a' + i), byte('0' + round)}
			p, _ := d.AddChain(virtiotest.R(msg), virtiotest.W(4))
			d.Publish()
			signal(t, fds[i])
			if u := waitUsed(t, d, p.Head); !bytes.Equal(writable(d, p, u.Len), msg) {
				t.Fatalf("queue %d round %d: wrong echo", i, round)
			}
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Close() // idempotent
	d := m.Drivers[0]
	d.AddChain(virtiotest.R([]byte("late")), virtiotest.W(4))
	d.Publish()
	signal(t, fds[0])
	if len(d.TakeUsed()) != 0 {
		t.Fatal("kick delivered after Close")
	}
	if _, err := r.tr.ServeIoeventfds(make([]int, 3)); err == nil {
		t.Fatal("more eventfds than queues accepted")
	}
}

func TestEventfdInterrupt(t *testing.T) {
	irq, err := mmio.NewEventfdInterrupt()
	if err != nil {
		t.Fatal(err)
	}
	defer irq.Close()
	d := virtiotest.New(virtiotest.Config{QueueSize: 8})
	tr := mmio.New(newEcho(1), d.Mem, mmio.Options{Interrupt: irq})
	r := &rig{t: t, tr: tr}
	r.probe(d)
	for range 2 {
		d.SetUsedEvent(d.UsedIdx()) // EVENT_IDX: interrupt for the next used element
		p, _ := d.AddChain(virtiotest.R([]byte("x")), virtiotest.W(1))
		d.Publish()
		r.w32(mmio.RegQueueNotify, 0)
		waitUsed(t, d, p.Head)
	}
	var buf [8]byte
	if _, err := unix.Read(irq.FD(), buf[:]); err != nil || binary.NativeEndian.Uint64(buf[:]) != 2 {
		t.Fatalf("irqfd counter %d, %v; want 2 triggers", binary.NativeEndian.Uint64(buf[:]), err)
	}
}

// TestVirtiofsBehindTransport probes the real virtio-fs device through the
// registers (hiprio and request queue in one guest memory) and runs FUSE
// INIT and LOOKUP over the request queue.
func TestVirtiofsBehindTransport(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(root, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := virtiofs.NewDevice(fuse.NewServer(overlay.New(pt), fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	m := virtiotest.NewMulti(virtiotest.Config{QueueSize: 64, MemSize: 4 << 20}, 2)
	r := newRig(t, dev, m.Mem)
	t.Cleanup(func() { r.w32(mmio.RegStatus, 0) })
	if r.r32(mmio.RegDeviceID) != virtio.DeviceIDFS {
		t.Fatal("not a virtio-fs device")
	}
	tag := make([]byte, 8)
	r.tr.Read(mmio.ConfigOffset, tag[:4])
	r.tr.Read(mmio.ConfigOffset+4, tag[4:])
	if string(tag) != "/dev/roo" {
		t.Fatalf("tag read through config space: %q", tag)
	}
	if st := r.probe(m.Drivers...); st != ack|driver|featuresOK|driverOK {
		t.Fatalf("status %#x", st)
	}
	d := m.Drivers[1]
	call := func(request []byte, out int) (fuse.OutHeader, []byte) {
		t.Helper()
		p, err := d.AddChain(virtiotest.R(request), virtiotest.W(out))
		if err != nil {
			t.Fatal(err)
		}
		d.Publish()
		r.w32(mmio.RegQueueNotify, 1)
		u := waitUsed(t, d, p.Head)
		reply := writable(d, p, u.Len)
		var h fuse.OutHeader
		binary.Read(bytes.NewReader(reply), binary.LittleEndian, &h)
		return h, reply[fuse.OutHeaderSize:]
	}
	h, _ := call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}), 256)
	if h.Error != 0 || h.Unique != 1 {
		t.Fatalf("INIT: %+v", h)
	}
	h, body := call(fusetest.Request(fuse.OpLookup, 2, 1, "hello.txt"), 256)
	if h.Error != 0 || h.Unique != 2 || len(body) < 8 || binary.LittleEndian.Uint64(body) == 0 {
		t.Fatalf("LOOKUP hello.txt: %+v", h)
	}
	h, _ = call(fusetest.Request(fuse.OpLookup, 3, 1, "missing"), 256)
	if h.Error != -int32(unix.ENOENT) {
		t.Fatalf("LOOKUP missing: error %d", h.Error)
	}
	if r.r32(mmio.RegInterruptStatus)&mmio.InterruptUsedBuffer == 0 || r.irqs.Load() == 0 {
		t.Fatal("no used buffer interrupt")
	}
}
