package vhostuser

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// threadsInPpoll counts the process's threads blocked in ppoll(2), as
// /proc/self/task/*/syscall says (the first field is the system call
// number, or "running").
func threadsInPpoll(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/syscall")
	must(t, err)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread is gone
		}
		if fields := strings.Fields(string(b)); len(fields) > 0 && fields[0] == "271" { // SYS_PPOLL on amd64
			n++
		}
	}
	return n
}

// TestRequestQueueThread drives the real virtio-fs device through the
// backend and checks the queue threads: the request queue's kicks wait in
// a thread of its own blocked in ppoll (the hiprio queue's in the
// netpoller, so exactly one), requests are served through it, stopping the
// rings (GET_VRING_BASE) ends it before the reply, and a hang-up leaves
// no goroutine, thread in ppoll or fd behind. Before queue threads the
// count of threads in ppoll stayed at the baseline (every kick waited in
// the netpoller's epoll_pwait), and the test failed there.
func TestRequestQueueThread(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("reads the amd64 system call number of ppoll from /proc")
	}
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	must(t, err)
	dev, err := virtiofs.NewDevice(fuse.NewServer(pt, fuse.Options{}), virtiofs.DeviceOptions{Tag: "qt"})
	must(t, err)
	b := NewBackend(dev, Options{Log: testLogger(t)})
	t.Cleanup(func() { b.Close() })

	baseFds := countFds(t)
	baseG := runtime.NumGoroutine()
	basePpoll := threadsInPpoll(t)

	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	d := fe.drivers[1]
	roundTrip := func(request []byte) {
		t.Helper()
		p, err := d.AddChain(virtiotest.R(request), virtiotest.W(256))
		must(t, err)
		d.Publish()
		_, err = unix.Write(fe.kick[1], u64Bytes(1))
		must(t, err)
		fe.waitCall(1)
		if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(p.Head) || used[0].Len < uint32(fuse.OutHeaderSize) {
			t.Fatalf("used %+v for head %d", used, p.Head)
		}
	}
	roundTrip(fuseRequest(t, fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	for i := range 50 {
		roundTrip(fuseRequest(t, fuse.OpGetattr, uint64(2+i), 1, fuse.GetAttrIn{}))
	}
	waitFor(t, "one queue thread in ppoll", func() bool { return threadsInPpoll(t) == basePpoll+1 })

	fe.stop() // GET_VRING_BASE answers only once the device is reset and the thread returned
	if n := threadsInPpoll(t); n != basePpoll {
		t.Fatalf("%d threads in ppoll after the rings stopped, want %d", n, basePpoll)
	}
	fe.hangUp()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	fe.close()
	waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= baseG })
	if n := countFds(t); n != baseFds {
		t.Fatalf("%d fds open after the hang-up, %d before", n, baseFds)
	}
}
