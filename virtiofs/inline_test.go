package virtiofs_test

import (
	"sync"
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

// holdHook holds the request with one unique until let go, as a breakpoint
// does; it is the real fuse.Hook contract, not a mock of the server.
type holdHook struct {
	unique uint64
	held   chan struct{} // closed when the request arrives
	free   chan struct{} // closed to let it go
	once   sync.Once
	freed  sync.Once
}

func (h *holdHook) Before(c *fuse.Call) fuse.Intervention {
	if c.Unique == h.unique {
		h.once.Do(func() { close(h.held) })
		<-h.free
	}
	return fuse.Intervention{}
}
func (h *holdHook) After(*fuse.Call, fuse.Errno) fuse.Intervention { return fuse.Intervention{} }
func (h *holdHook) Release()                                       { h.freed.Do(func() { close(h.free) }) }
func (h *holdHook) Resume()                                        {}

// TestHeldRequestDoesNotHoldUpItsQueue: the queue's poller serves a lone
// request itself; while that request is held (a breakpoint), requests that
// arrive behind it on the same queue are still served, and the held one
// completes once let go. Kicks come through QueueNotify (the in-process
// transport) or through ServeKick called by one kick reader, one kick
// after the other (the vhost-user backend's reader goroutine), which must
// not serve a request itself when a hook may hold it.
func TestHeldRequestDoesNotHoldUpItsQueue(t *testing.T) {
	t.Run("QueueNotify", func(t *testing.T) {
		testHeldRequest(t, func(dev *virtiofs.Device) func() { return func() { dev.QueueNotify(1) } })
	})
	t.Run("ServeKick", func(t *testing.T) {
		testHeldRequest(t, func(dev *virtiofs.Device) func() {
			kicks := make(chan struct{}, 64)
			go func() {
				for range kicks {
					dev.ServeKick(1)
				}
			}()
			t.Cleanup(func() { close(kicks) })
			return func() { kicks <- struct{}{} }
		})
	})
}

func testHeldRequest(t *testing.T, kicker func(*virtiofs.Device) func()) {
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hook := &holdHook{unique: 10, held: make(chan struct{}), free: make(chan struct{})}
	dev, err := virtiofs.NewDevice(fuse.NewServer(overlay.New(pt), fuse.Options{Hook: hook}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		t.Fatal(err)
	}
	drv := virtiotest.New(virtiotest.Config{QueueSize: 64, MemSize: 8 << 20, EventIdx: true})
	dev.AckFeatures(dev.Features())
	nop := virtio.NotifierFunc(func() error { return nil })
	if err := dev.Activate(drv.Mem, []*virtio.Queue{nil, drv.Queue()}, []virtio.Notifier{nop, nop}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hook.Release(); dev.Reset() })
	kick := kicker(dev)
	send := func(request []byte) uint16 {
		placed, err := drv.AddChain(virtiotest.R(request), virtiotest.W(256))
		if err != nil {
			t.Fatal(err)
		}
		drv.Publish()
		kick()
		return placed.Head
	}
	used := map[uint32]bool{}
	waitUsed := func(head uint16, what string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !used[uint32(head)]; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never completed", what)
			}
			for _, u := range drv.TakeUsed() {
				used[u.ID] = true
			}
		}
	}
	waitUsed(send(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{})), "INIT")
	held := send(fusetest.Request(fuse.OpGetattr, 10, 1, fuse.GetAttrIn{}))
	select {
	case <-hook.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the held request never reached the hook")
	}
	for i := range 5 {
		waitUsed(send(fusetest.Request(fuse.OpGetattr, uint64(20+i), 1, fuse.GetAttrIn{})), "a GETATTR behind the held request")
	}
	if used[uint32(held)] {
		t.Fatal("the held request completed while held")
	}
	hook.Release()
	waitUsed(held, "the held request, once let go")
}
