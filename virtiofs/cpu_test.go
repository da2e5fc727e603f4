package virtiofs_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// BenchmarkDeviceSerialRequestCPU drives the device as a guest's find does
// (one request in flight, a kick for each, a notification back) and reports
// the process's CPU time per request (getrusage: user + system), the cost
// of the wake-ups and hand-offs between the kick and the used ring. It is a
// proxy for the guest path's backend CPU (bench/guestbench measures that);
// the driver side is virtiotest's mock, whose own CPU is included.
func BenchmarkDeviceSerialRequestCPU(b *testing.B) {
	pt, err := passthrough.New(b.TempDir(), passthrough.Options{})
	if err != nil {
		b.Fatal(err)
	}
	dev, err := virtiofs.NewDevice(fuse.NewServer(overlay.New(pt), fuse.Options{}), virtiofs.DeviceOptions{Tag: virtiofs.RootTag})
	if err != nil {
		b.Fatal(err)
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
		b.Fatal(err)
	}
	defer dev.Reset()
	roundTrip := func(request []byte) {
		drv.SetUsedEvent(drv.UsedIdx()) // notify me on the next used element
		if _, err := drv.AddChain(virtiotest.R(request), virtiotest.W(256)); err != nil {
			b.Fatal(err)
		}
		drv.Publish()
		dev.QueueNotify(1)
		for {
			if len(drv.TakeUsed()) > 0 {
				return
			}
			select {
			case <-called:
			case <-time.After(30 * time.Second):
				b.Fatal("no reply within 30s")
			}
		}
	}
	roundTrip(req(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := req(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	b.ResetTimer()
	for range b.N {
		roundTrip(getattr)
	}
	b.StopTimer()
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/req")
}
