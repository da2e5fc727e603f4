package vhostuser

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// fuseBackend is a backend for the real virtio-fs device over a
// passthrough filesystem in a temporary directory, closed at cleanup.
func fuseBackend(tb testing.TB, tag string, opts Options) *Backend {
	pt, err := passthrough.New(tb.TempDir(), passthrough.Options{})
	must(tb, err)
	dev, err := virtiofs.NewDevice(fuse.NewServer(pt, fuse.Options{}), virtiofs.DeviceOptions{Tag: tag})
	must(tb, err)
	b := NewBackend(dev, opts)
	tb.Cleanup(func() { b.Close() })
	return b
}

// kickOne is the eventfd count a kick writes (read only, shared).
var kickOne = u64Bytes(1)

// fuseRoundTrip sends one FUSE request on the request queue (a reply
// buffer of 256 bytes), kicks, waits for the call eventfd and checks that
// the chain came back used with at least a reply header.
func (fe *frontEnd) fuseRoundTrip(request []byte) {
	t := fe.t
	t.Helper()
	d := fe.drivers[1]
	p, err := d.AddChain(virtiotest.R(request), virtiotest.W(256))
	must(t, err)
	d.Publish()
	_, err = unix.Write(fe.kick[1], kickOne)
	must(t, err)
	fe.waitCall(1)
	if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(p.Head) || used[0].Len < uint32(fuse.OutHeaderSize) {
		t.Fatalf("used %+v for head %d", used, p.Head)
	}
}

// BenchmarkKickToCallCPU drives the real virtio-fs device (passthrough
// filesystem) through this backend as a guest's find does: one GETATTR in
// flight, a kick eventfd write for each, the call eventfd back. It reports
// the process's CPU time per request (getrusage: user + system), which
// counts the wake-ups between kick and call. The front-end is the fake
// QEMU of these tests, in the same process: its own share (a write, a
// poll, a read per request) is included and does not change with the
// backend. bench/guestbench measures the real guest path.
func BenchmarkKickToCallCPU(b *testing.B) {
	be := fuseBackend(b, "bench", Options{})
	fe, _ := pairFrontEnd(b, be)
	fe.handshake()
	fe.start()
	fe.fuseRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	var before, after unix.Rusage
	must(b, unix.Getrusage(unix.RUSAGE_SELF, &before))
	b.ResetTimer()
	for range b.N {
		fe.fuseRoundTrip(getattr)
	}
	b.StopTimer()
	must(b, unix.Getrusage(unix.RUSAGE_SELF, &after))
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/req")
}
