package vhostuser

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// waitThreads returns, for each of the process's threads blocked in a
// queue thread's wait, epoll_pwait(2) with room for a few events (its kick
// fds and the stop eventfd; the runtime's netpoller asks for 128), its
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
		fields := strings.Fields(string(b))
		if len(fields) < 5 || fields[0] != "281" { // SYS_EPOLL_PWAIT on amd64
			continue
		}
		if maxEvents, err := strconv.ParseUint(strings.TrimPrefix(fields[3], "0x"), 16, 64); err == nil && maxEvents >= 2 && maxEvents <= 16 {
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
// same one, so exactly one), requests are served through it, stopping the
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

// TestHiprioSharesTheRequestQueueThread checks that the hiprio queue's
// kicks (FORGETs here) are served by the request queue's thread: the
// FORGETs come back used, a request on the request queue between them
// too, one thread waits for both queues, and the hiprio kick counter is
// left unread, as the request queue's is (TestQueueThreadKickNotRead).
// Before, a netpoller reader served the hiprio queue and read every kick,
// and the test failed there: the front-end's read found the counter
// empty.
func TestHiprioSharesTheRequestQueueThread(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("reads the amd64 system call number of epoll_pwait from /proc")
	}
	b := fuseBackend(t, "hp", Options{Log: testLogger(t)})
	baseWaiting := threadsWaiting(t)
	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	fe.fuseRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	const forgets = 10
	hiprio := fe.drivers[0]
	for i := range forgets {
		// A nodeid never handed out: the server forgets nothing and sends no reply.
		p, err := hiprio.AddChain(virtiotest.R(fusetest.Request(fuse.OpForget, uint64(100+i), 999, fuse.ForgetIn{Nlookup: 1})))
		must(t, err)
		hiprio.Publish()
		_, err = unix.Write(fe.kick[0], kickOne)
		must(t, err)
		var used []virtiotest.UsedElem
		waitFor(t, "the FORGET to come back used", func() bool {
			used = append(used, hiprio.TakeUsed()...)
			return len(used) > 0
		})
		if len(used) != 1 || used[0].ID != uint32(p.Head) || used[0].Len != 0 {
			t.Fatalf("hiprio used %+v, want head %d with length 0", used, p.Head)
		}
		fe.fuseRoundTrip(fusetest.Request(fuse.OpGetattr, uint64(200+i), 1, fuse.GetAttrIn{}))
	}
	waitFor(t, "one queue thread waiting, for both queues", func() bool { return threadsWaiting(t) == baseWaiting+1 })
	var buf [8]byte
	n, err := unix.Read(fe.kick[0], buf[:])
	if err != nil || n != len(buf) {
		t.Fatalf("reading the hiprio kick eventfd after %d served kicks: %d bytes, %v; want the kicks' count left there", forgets, n, err)
	}
	if got := ne.Uint64(buf[:]); got != forgets {
		t.Fatalf("hiprio kick counter %d after %d served kicks, want %d (something read it)", got, forgets, forgets)
	}
	fe.stop()
	fe.hangUp()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	fe.close()
}
