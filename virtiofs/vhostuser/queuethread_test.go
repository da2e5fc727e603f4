package vhostuser

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// ppollThreads returns, for each of the process's threads blocked in
// ppoll(2), its /proc/self/task/*/syscall fields: the system call number
// (or "running"), then its arguments in hex.
func ppollThreads(t *testing.T) [][]string {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/syscall")
	must(t, err)
	var threads [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread is gone
		}
		if fields := strings.Fields(string(b)); len(fields) > 0 && fields[0] == "271" { // SYS_PPOLL on amd64
			threads = append(threads, fields)
		}
	}
	return threads
}

// threadsInPpoll counts the process's threads blocked in ppoll(2).
func threadsInPpoll(t *testing.T) int { return len(ppollThreads(t)) }

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
	b := fuseBackend(t, "qt", Options{Log: testLogger(t)})

	baseFds := countFds(t)
	baseG := runtime.NumGoroutine()
	basePpoll := threadsInPpoll(t)

	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	fe.fuseRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	for i := range 50 {
		fe.fuseRoundTrip(fusetest.Request(fuse.OpGetattr, uint64(2+i), 1, fuse.GetAttrIn{}))
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
