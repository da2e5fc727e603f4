package vhostuser

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// waitThreads returns, for each of the process's threads blocked in a
// queue thread's wait, epoll_pwait(2) with room for two events (the kick
// fd and the stop eventfd; the runtime's netpoller asks for 128), its
// /proc/self/task/*/syscall fields: the system call number, then its
// arguments in hex (the fifth field is the timeout).
func waitThreads(t *testing.T) [][]string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/syscall")
	must(t, err)
	var threads [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread is gone
		}
		if fields := strings.Fields(string(b)); len(fields) > 4 && fields[0] == "281" && fields[3] == "0x2" { // SYS_EPOLL_PWAIT on amd64
			threads = append(threads, fields)
		}
	}
	return threads
}

// threadsWaiting counts the process's threads blocked in a queue thread's
// wait.
func threadsWaiting(t *testing.T) int { return len(waitThreads(t)) }

// TestRequestQueueThread drives the real virtio-fs device through the
// backend and checks the queue threads: the request queue's kicks wait in
// a thread of its own blocked in its own wait (the hiprio queue's in the
// netpoller, so exactly one), requests are served through it, stopping the
// rings (GET_VRING_BASE) ends it before the reply, and a hang-up leaves
// no goroutine, waiting thread or fd behind. Before queue threads the
// count of threads in such a wait stayed at the baseline (every kick
// waited in the netpoller's epoll_pwait), and the test failed there.
func TestRequestQueueThread(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("reads the amd64 system call number of epoll_pwait from /proc")
	}
	b := fuseBackend(t, "qt", Options{Log: testLogger(t)})

	baseFds := countFds(t)
	baseG := runtime.NumGoroutine()
	baseWaiting := threadsWaiting(t)

	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	fe.fuseRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	for i := range 50 {
		fe.fuseRoundTrip(fusetest.Request(fuse.OpGetattr, uint64(2+i), 1, fuse.GetAttrIn{}))
	}
	waitFor(t, "one queue thread waiting", func() bool { return threadsWaiting(t) == baseWaiting+1 })

	fe.stop() // GET_VRING_BASE answers only once the device is reset and the thread returned
	if n := threadsWaiting(t); n != baseWaiting {
		t.Fatalf("%d queue threads waiting after the rings stopped, want %d", n, baseWaiting)
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

// TestQueueThreadKickNotRead checks that a queue thread wakes once per kick
// without reading the kick eventfd (edge-triggered epoll, see thread): the
// counter the front-end wrote to is still there after the requests were
// served, and once the front-end takes it itself (as QEMU may) the next
// kicks are still served, each a new edge. Before, the thread read the
// counter after each ppoll, and the front-end's read below found it empty
// (EAGAIN).
func TestQueueThreadKickNotRead(t *testing.T) {
	b := fuseBackend(t, "kr", Options{Log: testLogger(t)})
	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	fe.fuseRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	const kicks = 20
	for i := range kicks {
		fe.fuseRoundTrip(fusetest.Request(fuse.OpGetattr, uint64(2+i), 1, fuse.GetAttrIn{}))
	}
	var buf [8]byte
	n, err := unix.Read(fe.kick[1], buf[:])
	if err != nil || n != len(buf) {
		t.Fatalf("reading the kick eventfd after %d served kicks: %d bytes, %v; want the kicks' count left there", kicks+1, n, err)
	}
	if got := ne.Uint64(buf[:]); got != kicks+1 {
		t.Fatalf("kick counter %d after %d served kicks, want %d (the thread read some)", got, kicks+1, kicks+1)
	}
	for i := range kicks {
		fe.fuseRoundTrip(fusetest.Request(fuse.OpGetattr, uint64(100+i), 1, fuse.GetAttrIn{}))
	}
	fe.stop()
	fe.hangUp()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	fe.close()
}
