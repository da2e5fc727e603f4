package virtiofs_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// Hostile drivers against the device. The driver is the virtiotest mock
// (no guest kernel runs in a unit test); device, queue and filesystem are
// real.

// waitUsed waits (bounded, generously: the machine may be busy) for the
// used element of head and returns it.
func (r *rig) waitUsed(head uint16) virtiotest.UsedElem {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range r.drv.TakeUsed() {
			if u.ID == uint32(head) {
				return u
			}
		}
		time.Sleep(time.Millisecond)
	}
	r.t.Fatalf("head %d never completed", head)
	return virtiotest.UsedElem{}
}

// TestDeviceUsedLenWithinWritable: requests whose reply does not fit the
// chain's writable buffers (none at all, or fewer bytes than the reply)
// are completed with used length 0, never with more than the chain holds.
// FORGET, BATCH_FORGET and INTERRUPT with a lying length get an error
// reply from the server that a chain without writable bytes cannot hold.
func TestDeviceUsedLenWithinWritable(t *testing.T) {
	r := newRig(t, nil)
	r.call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}), nil, 128)
	lying := func(op uint32, unique uint64, body any) []byte {
		b := fusetest.Request(op, unique, 1, body)
		b[0] += 64 // the header claims more bytes than the chain has
		return b
	}
	cases := []struct {
		name     string
		request  []byte
		writable []int
	}{
		{"FORGET", lying(fuse.OpForget, 2, fuse.ForgetIn{Nlookup: 1}), nil},
		{"BATCH_FORGET", lying(fuse.OpBatchForget, 3, fuse.BatchForgetIn{Count: 0}), nil},
		{"INTERRUPT", lying(fuse.OpInterrupt, 4, fuse.InterruptIn{Unique: 2}), nil},
		{"FORGET with 8 writable bytes", lying(fuse.OpForget, 5, fuse.ForgetIn{Nlookup: 1}), []int{8}},
	}
	for _, c := range cases {
		bufs := []virtiotest.Buf{virtiotest.R(c.request)}
		for _, n := range c.writable {
			bufs = append(bufs, virtiotest.W(n))
		}
		p, err := r.drv.AddChain(bufs...)
		if err != nil {
			t.Fatal(err)
		}
		r.drv.Publish()
		r.dev.QueueNotify(1)
		u := r.waitUsed(p.Head)
		writable := 0
		for _, n := range c.writable {
			writable += n
		}
		if int(u.Len) > writable {
			t.Errorf("%s: used len %d exceeds the chain's %d writable bytes", c.name, u.Len, writable)
		}
		for i, buf := range p.Bufs {
			if got := r.drv.Read(p.Addrs[i], uint64(len(buf.Data))); buf.Write && !bytes.Equal(got, buf.Data) {
				t.Errorf("%s: a reply that does not fit was partly written: % x", c.name, got)
			}
		}
	}
	// The device still serves.
	if h, _ := r.call(fusetest.Request(fuse.OpGetattr, 9, 1, fuse.GetAttrIn{}), nil, 16+104); h.Error != 0 || h.Unique != 9 {
		t.Fatalf("GETATTR afterwards: %+v", h)
	}
}

// endlessDriver is guest memory with a driver that keeps the available
// ring full: every time the device reads avail->idx, one more entry is
// published, so the device never finds the ring empty. This is what a guest
// vCPU spinning on the ring can do, made deterministic by running inside
// the device's own read. The entries point at a chain the queue rejects,
// which the device completes at once, so the head is never in flight twice.
type endlessDriver struct {
	*virtio.Memory
	drv        *virtiotest.Driver
	publishing atomic.Bool
	published  atomic.Int64
}

func (m *endlessDriver) LoadU16(gpa uint64) (uint16, error) {
	if gpa == m.drv.Avail+2 && m.publishing.Load() {
		m.drv.PushHead(0)
		m.drv.Publish()
		m.published.Add(1)
	}
	return m.Memory.LoadU16(gpa)
}

// TestResetWhileDriverKeepsRingFull: Reset returns while a driver keeps
// the available ring full (the poller checks for stop while it drains).
func TestResetWhileDriverKeepsRingFull(t *testing.T) {
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := virtiofs.NewDevice(fuse.NewServer(overlay.New(pt), fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		t.Fatal(err)
	}
	drv := virtiotest.New(virtiotest.Config{QueueSize: 64, MemSize: 1 << 20, EventIdx: true})
	drv.SetDesc(0, 1<<40, 64, 0, 0) // outside guest memory: rejected
	mem := &endlessDriver{Memory: drv.Mem, drv: drv}
	mem.publishing.Store(true)
	t.Cleanup(func() { mem.publishing.Store(false); dev.Reset() })
	dev.AckFeatures(dev.Features())
	nop := virtio.NotifierFunc(func() error { return nil })
	if err := dev.Activate(mem, []*virtio.Queue{nil, drv.Queue()}, []virtio.Notifier{nop, nop}); err != nil {
		t.Fatal(err)
	}
	dev.QueueNotify(1)
	for deadline := time.Now().Add(30 * time.Second); mem.published.Load() < 1000; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the device consumed only %d entries", mem.published.Load())
		}
	}
	done := make(chan struct{})
	go func() { dev.Reset(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mem.publishing.Store(false) // lets the poller and Reset finish
		<-done
		t.Fatalf("Reset did not return in 60 s while the driver kept the ring full (%d entries consumed)", mem.published.Load())
	}
}

// TestDeviceShrunkMemory: a vhost-user front-end truncates the file behind
// guest RAM so that a request's buffers are gone while the rings remain:
// serving the request faults, the request is completed with length 0, and
// the process lives on; once the memory is back, requests are served.
func TestDeviceShrunkMemory(t *testing.T) {
	const ramSize = 1 << 20
	fd, err := unix.MemfdCreate("guest-ram", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Ftruncate(fd, ramSize); err != nil {
		t.Fatal(err)
	}
	ram, err := unix.Mmap(fd, 0, ramSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ov: overlay.New(pt)}
	if r.dev, err = virtiofs.NewDevice(fuse.NewServer(r.ov, fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag}); err != nil {
		t.Fatal(err)
	}
	r.drv = virtiotest.New(virtiotest.Config{QueueSize: 64, MemSize: ramSize, EventIdx: true})
	r.drv.RAM = ram
	if r.drv.Mem, err = virtio.NewMemory(virtio.Region{GPA: r.drv.Base, Data: ram}); err != nil {
		t.Fatal(err)
	}
	r.dev.AckFeatures(r.dev.Features())
	nop := virtio.NotifierFunc(func() error { return nil })
	if err := r.dev.Activate(r.drv.Mem, []*virtio.Queue{nil, r.drv.Queue()}, []virtio.Notifier{nop, nop}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.dev.Reset(); unix.Munmap(ram) })
	r.call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}), nil, 128)

	// The rings live in the first 8 KiB (see virtiotest.New), the
	// buffers above: keep the former, drop the latter.
	ringsEnd := int64(r.drv.Used+4096) - int64(r.drv.Base)
	p, err := r.drv.AddChain(virtiotest.R(fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})), virtiotest.W(16+104))
	if err != nil {
		t.Fatal(err)
	}
	if p.Addrs[0]-r.drv.Base < uint64(ringsEnd) {
		t.Fatalf("request at %#x is not above the rings", p.Addrs[0])
	}
	r.drv.Publish()
	if err := unix.Ftruncate(fd, ringsEnd); err != nil {
		t.Fatal(err)
	}
	r.dev.QueueNotify(1)
	if u := r.waitUsed(p.Head); u.Len != 0 {
		t.Fatalf("request on vanished memory completed with length %d, want 0", u.Len)
	}

	if err := unix.Ftruncate(fd, ramSize); err != nil {
		t.Fatal(err)
	}
	if h, _ := r.call(fusetest.Request(fuse.OpGetattr, 3, 1, fuse.GetAttrIn{}), nil, 16+104); h.Error != 0 || h.Unique != 3 {
		t.Fatalf("GETATTR once memory is back: %+v", h)
	}
}
