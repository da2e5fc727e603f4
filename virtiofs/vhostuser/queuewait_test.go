package vhostuser

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/virtio/virtiotest"
)

// ppollWaits reports, for the process's threads blocked in ppoll(2) on two
// fds (a queue thread: the kick fd and its stop eventfd), how many wait
// with a timeout and how many without, as /proc/self/task/*/syscall says
// (the system call number, then its arguments in hex; the third is the
// timeout pointer, 0x0 for none).
func ppollWaits(t *testing.T) (bounded, endless int) {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/syscall")
	must(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread is gone
		}
		fields := strings.Fields(string(b))
		if len(fields) < 4 || fields[0] != "271" || fields[2] != "0x2" { // SYS_PPOLL on amd64, nfds 2
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
	pt, err := passthrough.New(t.TempDir(), passthrough.Options{})
	must(t, err)
	dev, err := virtiofs.NewDevice(fuse.NewServer(pt, fuse.Options{}), virtiofs.DeviceOptions{Tag: "qw"})
	must(t, err)
	b := NewBackend(dev, Options{Log: testLogger(t)})
	t.Cleanup(func() { b.Close() })
	_, baseEndless := ppollWaits(t)

	fe, done := pairFrontEnd(t, b)
	fe.handshake()
	fe.start()
	d := fe.drivers[1]
	unique := uint64(1)
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
	getattr := func() {
		unique++
		roundTrip(fuseRequest(t, fuse.OpGetattr, unique, 1, fuse.GetAttrIn{}))
	}
	roundTrip(fuseRequest(t, fuse.OpInit, unique, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))

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
