package vhostuser

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// fuseRequest encodes a FUSE request: header, then the little-endian body.
func fuseRequest(tb testing.TB, op uint32, unique, nodeid uint64, body ...any) []byte {
	var b bytes.Buffer
	for _, p := range body {
		must(tb, binary.Write(&b, binary.LittleEndian, p))
	}
	h := fuse.InHeader{Len: uint32(fuse.InHeaderSize + b.Len()), Opcode: op, Unique: unique, Nodeid: nodeid}
	var out bytes.Buffer
	must(tb, binary.Write(&out, binary.LittleEndian, h))
	return append(out.Bytes(), b.Bytes()...)
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
	pt, err := passthrough.New(b.TempDir(), passthrough.Options{})
	must(b, err)
	dev, err := virtiofs.NewDevice(fuse.NewServer(pt, fuse.Options{}), virtiofs.DeviceOptions{Tag: "bench"})
	must(b, err)
	be := NewBackend(dev, Options{})
	b.Cleanup(func() { be.Close() })
	fe, _ := pairFrontEnd(b, be)
	fe.handshake()
	fe.start()
	d := fe.drivers[1]
	one := u64Bytes(1)
	roundTrip := func(request []byte) {
		p, err := d.AddChain(virtiotest.R(request), virtiotest.W(256))
		must(b, err)
		d.Publish()
		_, err = unix.Write(fe.kick[1], one)
		must(b, err)
		fe.waitCall(1)
		used := d.TakeUsed()
		if len(used) != 1 || used[0].ID != uint32(p.Head) || used[0].Len < uint32(fuse.OutHeaderSize) {
			b.Fatalf("used %+v for head %d", used, p.Head)
		}
	}
	roundTrip(fuseRequest(b, fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := fuseRequest(b, fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	var before, after unix.Rusage
	must(b, unix.Getrusage(unix.RUSAGE_SELF, &before))
	b.ResetTimer()
	for range b.N {
		roundTrip(getattr)
	}
	b.StopTimer()
	must(b, unix.Getrusage(unix.RUSAGE_SELF, &after))
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/req")
}
