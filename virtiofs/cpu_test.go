package virtiofs_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// BenchmarkDeviceSerialRequestCPU drives the device as a guest's find does
// (one request in flight, a kick for each, a notification back) and reports
// the process's CPU time per request (getrusage: user + system), the cost
// of the wake-ups and hand-offs between the kick and the used ring. It is a
// proxy for the guest path's backend CPU (bench/guestbench measures that);
// the driver side is virtiotest's mock, whose own CPU is included.
func BenchmarkDeviceSerialRequestCPU(b *testing.B) {
	r := newRig(b, nil)
	r.kickRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	b.ResetTimer()
	for range b.N {
		r.kickRoundTrip(getattr)
	}
	b.StopTimer()
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/req")
}
