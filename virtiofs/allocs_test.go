package virtiofs_test

import (
	"testing"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// TestDeviceRequestAllocs bounds the heap allocations of one GETATTR
// through the device as a guest's find sends it (a kick, the chain
// popped, served, completed, a notification): 14 before chainPool (a
// chain and its two buffer lists for the request, one more chain for the
// empty pop that ends the drain, errors.As's target for each pop), 4
// after, the test driver's and the kick's; the bound leaves room for
// the scheduling to vary.
func TestDeviceRequestAllocs(t *testing.T) {
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pt.Close()
	dev, err := virtiofs.NewDevice(fuse.NewServer(overlay.New(pt), fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		t.Fatal(err)
	}
	drv := virtiotest.New(virtiotest.Config{QueueSize: 64, MemSize: 8 << 20, EventIdx: true})
	dev.AckFeatures(dev.Features())
	called := make(chan struct{}, 1)
	notify := virtio.NotifierFunc(func() error {
		select {
		case called <- struct{}{}:
		default:
		}
		return nil
	})
	if err := dev.Activate(drv.Mem, []*virtio.Queue{nil, drv.Queue()}, []virtio.Notifier{notify, notify}); err != nil {
		t.Fatal(err)
	}
	defer dev.Reset()
	roundTrip := func(request []byte) {
		drv.SetUsedEvent(drv.UsedIdx())
		if _, err := drv.AddChain(virtiotest.R(request), virtiotest.W(256)); err != nil {
			t.Fatal(err)
		}
		drv.Publish()
		dev.QueueNotify(1)
		for len(drv.TakeUsed()) == 0 {
			<-called
		}
	}
	roundTrip(req(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := req(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	for range 100 {
		roundTrip(getattr) // warm the pools
	}
	n := testing.AllocsPerRun(500, func() { roundTrip(getattr) })
	t.Logf("%v allocations per GETATTR", n)
	if n > 8 {
		t.Errorf("%v allocations per GETATTR through the device, want at most 8", n)
	}
}
