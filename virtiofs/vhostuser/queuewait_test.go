package vhostuser

import (
	"runtime"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// ppollWaits reports, for the process's threads blocked in ppoll(2) on two
// fds (a queue thread: the kick fd and its stop eventfd), how many wait
// with a timeout and how many without, as /proc/self/task/*/syscall says
// (the system call number, then its arguments in hex; the third is the
// timeout pointer, 0x0 for none).
func ppollWaits(t *testing.T) (bounded, endless int) {
	t.Helper()
	for _, fields := range ppollThreads(t) {
		if len(fields) < 4 || fields[2] != "0x2" { // nfds 2
			continue
		}
		if fields[3] == "0x0" {
			endless++
		} else {
			bounded++
		}
	}
	return bounded, endless
}

// TestQueueThreadBoundedWait checks the queue thread's waits: while kicks
// come its ppoll has a timeout (kickWaitSlice, under the 10 ms after which
// sysmon retakes the P of a thread in a system call), once the queue is
// quiet it waits without one, and a kick after the quiet spell is served.
// Before bounded waits every ppoll waited without a timeout and the first
// wait below failed ("timed out waiting for a bounded ppoll while kicks
// come").
func TestQueueThreadBoundedWait(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("reads the amd64 system call number of ppoll from /proc")
	}
	b := fuseBackend(t, "qw", Options{Log: testLogger(t)})
	_, baseEndless := ppollWaits(t)

	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	unique := uint64(1)
	getattr := func() {
		unique++
		fe.fuseRoundTrip(fusetest.Request(fuse.OpGetattr, unique, 1, fuse.GetAttrIn{}))
	}
	fe.fuseRoundTrip(fusetest.Request(fuse.OpInit, unique, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))

	// A request before every look keeps the queue busy however slowly
	// this test is scheduled.
	waitFor(t, "a bounded ppoll while kicks come", func() bool {
		getattr()
		bounded, _ := ppollWaits(t)
		return bounded == 1
	})
	waitFor(t, "an endless ppoll once the queue is quiet", func() bool {
		bounded, endless := ppollWaits(t)
		return bounded == 0 && endless == baseEndless+1
	})
	getattr()

	fe.stop()
	fe.hangUp()
	if err := <-done; err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
	fe.close()
}

// TestKickWaitPolicy checks the queue thread's choices between kicks: an
// endless wait and no yield while the queue is quiet (the zero value, and
// again after kickWaitQuiet slices without a kick), and while it is busy a
// timeout of kickWaitSlice and a runtime.Gosched at most once a slice, so
// that sysmon never finds the goroutine's schedtick 10 ms old (see
// yieldDue). It failed to build before the yield ("w.yieldDue undefined").
func TestKickWaitPolicy(t *testing.T) {
	var w kickWait
	t0 := time.Unix(1000, 0)
	if w.timeout() != nil || w.yieldDue(t0) {
		t.Fatal("a queue that never had a kick: bounded wait or yield")
	}
	w.kicked()
	if ts := w.timeout(); ts == nil || ts.Nano() != int64(kickWaitSlice) {
		t.Fatalf("after a kick: timeout %v, want %v", ts, kickWaitSlice)
	}
	if !w.yieldDue(t0) {
		t.Fatal("after a kick: no yield, the first time")
	}
	if w.yieldDue(t0.Add(kickWaitSlice - time.Microsecond)) {
		t.Fatal("a second yield within one slice")
	}
	if !w.yieldDue(t0.Add(kickWaitSlice)) {
		t.Fatal("no yield one slice after the last")
	}
	for range kickWaitQuiet - 1 {
		w.timedOut()
	}
	if w.timeout() == nil {
		t.Fatalf("quiet after %d slices, want %d", kickWaitQuiet-1, kickWaitQuiet)
	}
	w.timedOut()
	if w.timeout() != nil || w.yieldDue(t0.Add(time.Hour)) {
		t.Fatal("a quiet queue: bounded wait or yield")
	}
	w.kicked()
	if w.timeout() == nil {
		t.Fatal("a kick after the quiet spell: wait not bounded again")
	}
}
