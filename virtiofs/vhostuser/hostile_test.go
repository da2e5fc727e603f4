package vhostuser

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// Hostile front-ends against the real backend over a real unix socket,
// with real memfds and eventfds (the fake QEMU of fakeqemu_test.go).

// listen serves b on a socket in a temporary directory and returns its
// path and a function that stops serving (as SIGTERM does in
// krunbench serve: ListenAndServe's context is cancelled) and fails the
// test unless ListenAndServe returns in bounded time.
func listen(t *testing.T, b *Backend) (path string, stop func()) {
	path = filepath.Join(t.TempDir(), "vfs.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.ListenAndServe(ctx, path) }()
	waitFor(t, "the socket", func() bool { _, err := os.Stat(path); return err == nil })
	return path, func() {
		t.Helper()
		cancel()
		select {
		case err := <-served:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("ListenAndServe returned %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("ListenAndServe did not return within 60 s of its context being cancelled")
		}
	}
}

// startedFrontEnd connects a front-end to the socket at path and starts
// its rings.
func startedFrontEnd(t *testing.T, path string) *frontEnd {
	fe := dialFrontEnd(t, path)
	fe.handshake()
	fe.start()
	return fe
}

// startedPair is pairFrontEnd with the front-end's rings started.
func startedPair(t *testing.T, b *Backend) (*frontEnd, <-chan error) {
	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	return fe, done
}

// nextFrontEndIsServed: after an attack, a new front-end on the socket at
// path gets its request answered.
func nextFrontEndIsServed(t *testing.T, path string) {
	next := startedFrontEnd(t, path)
	next.roundTrip(1, "the next front-end")
	next.hangUp()
}

// saturatedEventfd returns a blocking eventfd whose counter is at its
// maximum: a write of 1 to it blocks until someone reads it.
func saturatedEventfd(t *testing.T) int {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	must(t, err)
	_, err = unix.Write(fd, u64Bytes(0xffff_ffff_ffff_fffe))
	must(t, err)
	return fd
}

// TestCallFdThatBlocks: a front-end whose call fd is a blocking eventfd at
// its maximum cannot make a notification block a worker: the request is
// completed, stopping the ring (which resets the device and waits for the
// requests in flight) answers, the next front-end is served, and the
// backend stops when told to.
func TestCallFdThatBlocks(t *testing.T) {
	b, _ := echoBackend(t, Options{Log: testLogger(t), BusyWait: 30 * time.Second})
	path, stop := listen(t, b)

	fe := startedFrontEnd(t, path)
	full := saturatedEventfd(t)
	fe.mustAck(reqSetVringCall, u64Bytes(1), full)
	unix.Close(fe.call[1])
	fe.call[1] = full
	d := fe.drivers[1]
	p, err := d.AddChain(virtiotest.R([]byte("to a full call fd")), virtiotest.W(64))
	must(t, err)
	d.Publish()
	_, err = unix.Write(fe.kick[1], u64Bytes(1))
	must(t, err)
	waitFor(t, "the used ring", func() bool { return d.UsedIdx() == 1 })
	if used := d.TakeUsed(); len(used) != 1 || used[0].ID != uint32(p.Head) {
		t.Fatalf("used %+v", used)
	}
	fe.stop() // GET_VRING_BASE: a reply only once the device is reset
	fe.hangUp()

	nextFrontEndIsServed(t, path)
	stop()
}

// TestCallFdNotAnEventfd: a call fd that could fill up or never be read (a
// pipe, /dev/zero) is refused with a failure ack, and the connection goes
// on.
func TestCallFdNotAnEventfd(t *testing.T) {
	pipe := make([]int, 2)
	must(t, unix.Pipe2(pipe, unix.O_CLOEXEC))
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	b, _ := echoBackend(t, Options{Log: testLogger(t)})
	fe, _ := startedPair(t, b)
	fe.mustNack(reqSetVringCall, u64Bytes(1), pipe[1])
	fe.mustNack(reqSetVringCall, u64Bytes(1), devZero(t))
	fe.roundTrip(1, "still served, on the old call fd")
}

// TestShrunkGuestMemory: a front-end shrinks the guest-RAM memfd to 0
// under the backend's mapping and kicks. The ring access faults; the queue
// is broken instead of the process dying of SIGBUS, and the next
// front-end is served.
func TestShrunkGuestMemory(t *testing.T) {
	b, dev := echoBackend(t, Options{Log: testLogger(t), BusyWait: 30 * time.Second})
	path, stop := listen(t, b)

	fe := startedFrontEnd(t, path)
	fe.roundTrip(1, "before the memfd shrinks")
	d := fe.drivers[1]
	_, err := d.AddChain(virtiotest.R([]byte("on memory about to vanish")), virtiotest.W(64))
	must(t, err)
	d.Publish()
	must(t, unix.Ftruncate(fe.memfd, 0))
	_, err = unix.Write(fe.kick[1], u64Bytes(1))
	must(t, err)
	waitFor(t, "the queue to break on the fault", func() bool {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		return dev.queues != nil && dev.queues[1] != nil && dev.queues[1].Broken()
	})
	if n := fe.getU64(reqGetQueueNum); n != 2 {
		t.Fatalf("GET_QUEUE_NUM after the fault: %d", n)
	}
	fe.hangUp()

	nextFrontEndIsServed(t, path)
	stop()
}

// TestHostileMessagesLeakNothing: 10,000 hostile messages with fds attached
// (refused kick and call fds, memfds too small to map, unknown requests,
// fds replaced again and again, regions added and removed) on one
// connection leave the backend's fd count where it was; the heap is
// logged.
func TestHostileMessagesLeakNothing(t *testing.T) {
	warmUpNetpoll(t)
	b, _ := echoBackend(t, Options{})
	fe, done := startedPair(t, b)
	fe.roundTrip(1, "warm")
	small, err := unix.MemfdCreate("small", unix.MFD_CLOEXEC)
	must(t, err)
	defer unix.Close(small)
	must(t, unix.Ftruncate(small, 0x1003))
	zero := devZero(t)
	pipe := make([]int, 2)
	must(t, unix.Pipe2(pipe, unix.O_CLOEXEC))
	defer unix.Close(pipe[0])
	defer unix.Close(pipe[1])
	sema, err := unix.Eventfd(0, unix.EFD_SEMAPHORE|unix.EFD_CLOEXEC)
	must(t, err)
	defer unix.Close(sema)
	extra := regionPayload(0x800000, 0x100000, userBase+0x800000, 0)
	attacks := []func(){
		func() { fe.mustNack(reqSetVringKick, u64Bytes(1), zero) },
		func() { fe.mustNack(reqSetVringCall, u64Bytes(1), pipe[1]) },
		func() { fe.mustNack(reqSetVringKick, u64Bytes(0), sema) },
		func() { fe.mustNack(reqAddMemReg, regionPayload(0x800000, 0x2000, userBase+0x800000, 0), small) },
		func() { fe.mustNack(99, []byte("junk"), pipe[0]) },
		func() { fe.mustNack(reqSetVringErr, u64Bytes(9), pipe[0]) },
		func() { fe.mustAck(reqAddMemReg, extra, fe.memfd); fe.mustAck(reqRemMemReg, extra) },
		func() {
			fd := eventfd(t)
			fe.mustAck(reqSetVringCall, u64Bytes(1), fd)
			unix.Close(fe.call[1])
			fe.call[1] = fd
		},
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fdsBefore := countFds(t)
	for i := range 10000 {
		attacks[i%len(attacks)]()
	}
	fe.roundTrip(1, "still served")
	runtime.GC()
	runtime.ReadMemStats(&after)
	fdsAfter := countFds(t)
	t.Logf("10000 hostile messages: fds %d -> %d, heap in use %d KiB -> %d KiB",
		fdsBefore, fdsAfter, before.HeapInuse>>10, after.HeapInuse>>10)
	if fdsAfter != fdsBefore {
		t.Errorf("fd count changed from %d to %d", fdsBefore, fdsAfter)
	}
	fe.hangUp()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
}
