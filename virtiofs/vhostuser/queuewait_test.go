package vhostuser

import (
	"runtime"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// queueWaits reports, for the process's threads blocked in a queue
// thread's wait (waitThreads), how many wait with a timeout and how many
// without (timeout -1).
func queueWaits(t *testing.T) (bounded, endless int) {
	t.Helper()
	for _, fields := range waitThreads(t) {
		if fields[4] == "0xffffffffffffffff" {
			endless++
		} else {
			bounded++
		}
	}
	return bounded, endless
}

// TestQueueThreadBoundedWait checks the queue thread's waits: while kicks
// come its wait has a timeout (at most kickYieldEvery, under the 10 ms
// after which sysmon retakes the P of a thread in a system call), once the
// queue is quiet it waits without one, and a kick after the quiet spell
// is served.
// Before bounded waits every wait had no timeout and the first
// wait below failed ("timed out waiting for a bounded ppoll while kicks
// come", the wait was a ppoll then).
func TestQueueThreadBoundedWait(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("reads the amd64 system call number of epoll_pwait from /proc")
	}
	b := fuseBackend(t, "qw", Options{Log: testLogger(t)})
	_, baseEndless := queueWaits(t)

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
	waitFor(t, "a bounded wait while kicks come", func() bool {
		getattr()
		bounded, _ := queueWaits(t)
		return bounded == 1
	})
	waitFor(t, "an endless wait once the queue is quiet", func() bool {
		bounded, endless := queueWaits(t)
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
// again once kickWaitQuiet passed without a kick), and while it is busy a
// runtime.Gosched at most once every kickYieldEvery (under the 10 ms after
// which sysmon finds the goroutine's schedtick overdue, see yieldDue) and
// a wait timeout cut to the time left until the next yield. It failed to
// build before the yield deadline ("not enough arguments in call to
// w.timeoutMs"); with the 5 ms slices before it a second yield came 5 ms
// after the first and every wait was bounded at 5 ms.
func TestKickWaitPolicy(t *testing.T) {
	var w kickWait
	t0 := time.Unix(1000, 0)
	if w.timeoutMs(t0) != -1 || w.yieldDue(t0) {
		t.Fatal("a queue that never had a kick: bounded wait or yield")
	}
	w.kicked(t0)
	if !w.yieldDue(t0) {
		t.Fatal("after a kick: no yield, the first time")
	}
	if ms := w.timeoutMs(t0); time.Duration(ms)*time.Millisecond != kickYieldEvery {
		t.Fatalf("just after a yield: timeout %d ms, want %v", ms, kickYieldEvery)
	}
	at := t0.Add(3*time.Millisecond + 500*time.Microsecond)
	if w.yieldDue(at) {
		t.Fatal("a second yield 3.5 ms after the first")
	}
	if ms := w.timeoutMs(at); ms != 6 { // 5.5 ms left, rounded up
		t.Fatalf("3.5 ms after a yield: timeout %d ms, want 6", ms)
	}
	if w.yieldDue(t0.Add(kickYieldEvery - time.Microsecond)) {
		t.Fatalf("a second yield within %v", kickYieldEvery)
	}
	if ms := w.timeoutMs(t0.Add(kickYieldEvery - time.Microsecond)); ms != 1 {
		t.Fatalf("1 us before the next yield: timeout %d ms, want 1", ms)
	}
	t1 := t0.Add(kickYieldEvery)
	if !w.yieldDue(t1) {
		t.Fatalf("no yield %v after the last", kickYieldEvery)
	}
	w.timedOut(t0.Add(kickWaitQuiet - time.Microsecond))
	if w.timeoutMs(t1) == -1 {
		t.Fatalf("quiet before %v without a kick", kickWaitQuiet)
	}
	w.timedOut(t0.Add(kickWaitQuiet))
	if w.timeoutMs(t1) != -1 || w.yieldDue(t0.Add(time.Hour)) {
		t.Fatal("a quiet queue: bounded wait or yield")
	}
	w.kicked(t0.Add(time.Hour))
	if w.timeoutMs(t0.Add(time.Hour)) == -1 {
		t.Fatal("a kick after the quiet spell: wait not bounded again")
	}
}
