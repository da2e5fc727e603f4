package virtiofs_test

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// The guest side here is the driver-side mock of vmm/virtio (no guest
// kernel runs in a unit test); the filesystem behind the device is real.

type rig struct {
	t       testing.TB
	drv     *virtiotest.Driver
	dev     *virtiofs.Device
	ov      *overlay.FS
	notifed atomic.Int32
	called  chan struct{} // a notification since the last kickRoundTrip looked
	wait    *time.Timer   // kickRoundTrip's deadline, reused: no allocation per request
}

func newRig(t testing.TB, payload []byte) *rig { return newRigMem(t, payload, nil) }

// newRigMem is newRig with the device given wrap(the driver's memory) as
// guest memory (a driver-side mock that counts or changes accesses); nil
// wrap gives it the driver's memory itself.
func newRigMem(t testing.TB, payload []byte, wrap func(*virtiotest.Driver) virtio.GuestMemory) *rig {
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ov: overlay.New(pt), called: make(chan struct{}, 1)}
	r.ov.SetPayload(payload)
	r.dev, err = virtiofs.NewDevice(fuse.NewServer(r.ov, fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		t.Fatal(err)
	}
	r.drv = virtiotest.New(virtiotest.Config{QueueSize: 64, MemSize: 8 << 20, EventIdx: true})
	r.dev.AckFeatures(r.dev.Features())
	notify := virtio.NotifierFunc(func() error {
		r.notifed.Add(1)
		select {
		case r.called <- struct{}{}:
		default:
		}
		return nil
	})
	queues := []*virtio.Queue{nil, r.drv.Queue()}
	var mem virtio.GuestMemory = r.drv.Mem
	if wrap != nil {
		mem = wrap(r.drv)
	}
	if err := r.dev.Activate(mem, queues, []virtio.Notifier{notify, notify}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.dev.Reset)
	return r
}

// kickRoundTrip sends one request as a guest's find does (one request in
// flight, asking with EVENT_IDX to be notified of its reply), kicks the
// queue and waits for the notification and the used element: the path of
// a kick through the device's poller, worker and notifier.
func (r *rig) kickRoundTrip(request []byte) {
	r.t.Helper()
	r.drv.SetUsedEvent(r.drv.UsedIdx()) // notify me on the next used element
	if _, err := r.drv.AddChain(virtiotest.R(request), virtiotest.W(256)); err != nil {
		r.t.Fatal(err)
	}
	r.drv.Publish()
	r.dev.QueueNotify(1)
	if r.wait == nil {
		r.wait = time.NewTimer(time.Hour)
	}
	r.wait.Reset(30 * time.Second)
	defer r.wait.Stop()
	for len(r.drv.TakeUsed()) == 0 {
		select {
		case <-r.called:
		case <-r.wait.C:
			r.t.Fatal("no reply within 30s")
		}
	}
}

// call sends one request split over the given readable pieces and waits
// for its reply in writable buffers of the given sizes.
func (r *rig) call(request []byte, cuts []int, writable ...int) (fuse.OutHeader, []byte) {
	r.t.Helper()
	var bufs []virtiotest.Buf
	prev := 0
	for _, c := range append(cuts, len(request)) {
		bufs = append(bufs, virtiotest.R(request[prev:c]))
		prev = c
	}
	for _, n := range writable {
		bufs = append(bufs, virtiotest.W(n))
	}
	placed, err := r.drv.AddChain(bufs...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.drv.Publish()
	r.dev.QueueNotify(1)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, u := range r.drv.TakeUsed() {
			if u.ID != uint32(placed.Head) {
				continue
			}
			var out []byte
			for i, b := range placed.Bufs {
				if b.Write {
					out = append(out, r.drv.Read(placed.Addrs[i], uint64(len(b.Data)))...)
				}
			}
			out = out[:u.Len]
			var h fuse.OutHeader
			binary.Read(bytes.NewReader(out), binary.LittleEndian, &h)
			return h, out[fuse.OutHeaderSize:]
		}
		time.Sleep(time.Millisecond)
	}
	r.t.Fatal("no reply on the used ring within 5s")
	return fuse.OutHeader{}, nil
}

func TestDeviceServesFUSEOverVirtqueue(t *testing.T) {
	payload := bytes.Repeat([]byte("payload!"), 1000)
	r := newRig(t, payload)
	h, _ := r.call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}), []int{3, 20}, 7, 200)
	if h.Error != 0 || h.Unique != 1 {
		t.Fatalf("INIT over the queue: %+v", h)
	}
	h, body := r.call(fusetest.Request(fuse.OpLookup, 2, 1, "init.krun"), []int{40, 45}, 16, 128)
	if h.Error != 0 || binary.LittleEndian.Uint64(body) != overlay.InitNodeid {
		t.Fatalf("LOOKUP init.krun: %+v", h)
	}
	h, body = r.call(fusetest.Request(fuse.OpRead, 3, overlay.InitNodeid, fuse.ReadIn{Offset: 5, Size: 6000}), nil, 16, 1, 4093, 3000)
	if h.Error != 0 || !bytes.Equal(body, payload[5:6005]) {
		t.Fatalf("READ across odd writable buffers: error %d, %d bytes", h.Error, len(body))
	}
	h, body = r.call(fusetest.Request(fuse.OpRead, 4, overlay.InitNodeid, fuse.ReadIn{Offset: uint64(len(payload)), Size: 4096}), nil, 4096+16)
	if h.Error != 0 || len(body) != 0 {
		t.Fatalf("EOF READ: error %d, %d bytes", h.Error, len(body))
	}
	ioctl := fusetest.Request(fuse.OpIoctl, 5, 1, fuse.IoctlIn{Cmd: fuse.ExitCodeIoctl, Arg: 42})
	binary.LittleEndian.PutUint32(ioctl[32:], fuse.InitPID) // the header's pid: the guest's init reports
	h, _ = r.call(ioctl, nil, 64)
	if code, ok := r.ov.ExitCode(); h.Error != 0 || !ok || code != 42 {
		t.Fatalf("exit ioctl: error %d, code %d set %v", h.Error, code, ok)
	}
	if r.notifed.Load() == 0 {
		t.Fatal("the device never notified the driver")
	}
}

func TestDeviceConfigSpace(t *testing.T) {
	r := newRig(t, nil)
	buf := make([]byte, 40)
	r.dev.ReadConfig(0, buf)
	if string(bytes.TrimRight(buf[:36], "\x00")) != "/dev/root" || binary.LittleEndian.Uint32(buf[36:]) != 1 {
		t.Fatalf("config space %q", buf)
	}
	if _, err := virtiofs.NewDevice(nil, virtiofs.DeviceOptions{Tag: string(make([]byte, 37))}); err == nil {
		t.Fatal("a 37-byte tag was accepted")
	}
}

func TestDeviceRejectsBadChainAndKeepsServing(t *testing.T) {
	r := newRig(t, nil)
	r.call(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}), nil, 128)
	// A chain pointing outside guest memory.
	head, err := r.drv.AllocDesc()
	if err != nil {
		t.Fatal(err)
	}
	r.drv.SetDesc(head, 1<<40, 64, 0, 0)
	r.drv.PushHead(head)
	r.drv.Publish()
	r.dev.QueueNotify(1)
	h, _ := r.call(fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{}), nil, 16+104)
	if h.Error != 0 || h.Unique != 2 {
		t.Fatalf("GETATTR after a bad chain: %+v", h)
	}
}
