package fusedev

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// handOffAfter is how long a worker serves a request before it lets
// another worker read the next one: longer than a create or a cached
// 128 KiB READ on the host (50 us still handed over one create in ten),
// short next to a READ that waits for the disk.
const handOffAfter = 200 * time.Microsecond

// Workers and readers.
//
// A worker reads a request from /dev/fuse and serves it itself, then reads
// the next, without waking any other thread: a serial client (one process
// creating, statting or reading files) is served by one thread that
// sleeps in read(2) between requests, as a single-threaded server would.
// Only Readers workers hold a reader token; the others wait for one as
// parked goroutines. A worker hands its token on when a request takes
// longer than handOffAfter (a cold READ, an fsync, a lookup on a slow
// disk), so a parked worker reads the next request and up to Workers are
// in service at once: the kernel's parallel readahead READs and parallel
// clients still overlap.
//
// Why not Workers threads all waiting in read(2), as before: a thread
// blocked in a system call keeps its P (the Go scheduler's CPU slot) until
// sysmon takes it away, which sysmon does every 20 us once no P is idle,
// starting a spinning thread each time; and the kernel wakes the waiter
// that slept longest, whose P is gone. On 2 CPUs a serial create+unlink
// with 8 such workers made about 1.8 context switches per request and ran
// at half the rate of a single worker (0.8). Handing every request to a
// fresh reader, as go-fuse does, costs a thread wakeup per request too.

// worker is one serving goroutine's state.
type worker struct {
	m     *Mount
	held  atomic.Bool // this worker holds a reader token
	timer *time.Timer // hands the token on when a request is slow
}

// take blocks until the worker holds a reader token.
func (w *worker) take() {
	if !w.held.Load() {
		w.m.readers <- struct{}{}
		w.held.Store(true)
	}
}

// handOff gives the token back, once; it runs on the worker and from the
// timer, whichever comes first.
func (w *worker) handOff() {
	if w.held.CompareAndSwap(true, false) {
		<-w.m.readers
	}
}

func (m *Mount) loop(fd int) {
	defer m.wg.Done()
	w := &worker{m: m}
	w.timer = time.AfterFunc(time.Hour, w.handOff)
	w.timer.Stop()
	// A worker that stops gives its token back, so the parked ones read
	// too, see the same error and stop in turn.
	defer w.handOff()
	in := alignedAt(bufSize, writeDataOffset)
	out := alignedAt(bufSize, fuse.OutHeaderSize)
	inv, outv := [][]byte{nil}, [][]byte{out}
	var sp fuse.ReadSplicer
	var s *splicer
	if !m.noSplice {
		s = newSplicer(fd, &m.spliceFailures)
		defer s.close()
		defer s.closeIn()
		sp = s
	}
	pw := &pendingWrite{s: s, spliced: &m.splicedWrites, buf: in[writeDataOffset:]}
	for {
		w.take()
		n, pending, spliced, err := 0, 0, false, error(nil)
		if s != nil && m.spliceCredit.Load() > 0 {
			n, pending, spliced, err = s.readRequest(in)
		}
		if !spliced {
			n, err = unix.Read(fd, in)
		}
		switch {
		case err == unix.EINTR || err == unix.EAGAIN || err == unix.ENOENT:
			continue
		case err != nil:
			if err != unix.ENODEV && err != unix.EBADF {
				m.once.Do(func() { m.err = fmt.Errorf("fusedev: read: %w", err) })
			}
			return
		}
		w.timer.Reset(handOffAfter)
		if s != nil {
			switch {
			case pending >= bulkWriteMin || (pending == 0 && bulkWrite(in[:n])):
				m.spliceCredit.Store(spliceCredit)
			case spliced:
				m.spliceCredit.Add(-1)
			}
		}
		inv[0] = in[:n]
		var size int
		var reply bool
		if pending > 0 {
			pw.left = pending
			size, reply = m.srv.ServePending(inv, outv, sp, pw)
			pw.finish()
		} else {
			size, reply = m.srv.ServeSplice(inv, outv, sp)
		}
		if reply {
			// ENOENT: the request was interrupted and the kernel forgot it.
			_, err = unix.Write(fd, out[:size])
		}
		w.timer.Stop()
		if reply && (err == unix.ENODEV || err == unix.EBADF) {
			return
		}
	}
}
