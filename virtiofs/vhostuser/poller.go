package vhostuser

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// kickWatch is one kick eventfd to poll and the queue it belongs to.
type kickWatch struct {
	index int
	fd    int
}

// poller waits on the kick eventfds of the running rings and forwards each
// kick to the device. The set of fds is replaced with set, which returns
// only once nothing reads an fd of the old set or is inside a notify call
// for it, so the caller may close those fds or reset the device.
//
// Each kick fd is read by its own goroutine, a queue thread blocked in
// epoll_pwait(2) for the queues the device asks one for (queuethread.go, where
// the numbers are), otherwise through the Go runtime's network poller
// (on a duplicate of the fd, which the poller owns), and
// the kick is served on that same goroutine (serve: Device.ServeKick when
// the device has it), so a request goes kick, pop, serve, call with no
// goroutine hand-off, close to virtiofsd's queue thread. A goroutine
// waiting for a kick holds no thread and no P.
//
// Measured in the guest (bench/guestbench create workload, strace -c -f
// and perf of the backend, 2,000 create+unlink, 14,000 requests):
//   - handing each kick to the device's poller goroutine over a channel
//     (the earlier design) made about 12 syscalls of overhead per request:
//     futex 2.7, nanosleep 3.0, epoll_pwait 2.7, read 2.3, write 1.2;
//     virtiofsd makes about 3 (ppoll, read, write), futex almost never.
//   - tried and rejected: a goroutine per kick fd blocked in ppoll(2),
//     serving inline. A goroutine blocked in a system call keeps its P;
//     with the hiprio and request queues' readers both waiting, both Ps of
//     this 2-CPU machine were in syscalls, so sysmon retook them (retake,
//     handoffp, startm: a futex wake-up) and the readers had to find a P
//     again on every kick (perf: futex 0.57 and nanosleep 2.7 per request,
//     all from sysmon and exitsyscall). With a watcher armed per request
//     (epoll_ctl one-shot, so a held request could not hold up the
//     queue) it was worse still: futex 1.5 per request.
//
// The kick fds are eventfds made non-blocking when they arrive
// (adoptEventfd): the front-end may read them too, and a read that finds
// the counter empty (EAGAIN) just waits for the next kick.
type poller struct {
	log    *slog.Logger
	notify func(index int)
	serve  func(index int) // nil: kicks go to notify
	// threaded says which queue thread (queuethread.go) waits for a
	// queue's kicks: the index of the queue that owns the thread, or -1
	// for the runtime's netpoller; nil: every queue in the netpoller.
	threaded func(index int) int

	mu      sync.Mutex
	readers []*kickReader
	closed  bool
}

// kickReader is the goroutine reading one kick fd through the netpoller
// (file set), or a queue thread waiting for the kicks of one or more
// queues (kicks and stop set).
type kickReader struct {
	index int
	file  *os.File    // a duplicate of the kick fd, netpoller readers
	kicks []kickWatch // queue threads: their queues, each fd a duplicate of its kick fd
	stop  int         // an eventfd written to stop a queue thread; else -1
	ep    int         // the queue thread's epoll instance; else -1
	done  chan struct{}
}

func newPoller(notify, serve func(int), threaded func(int) int, log *slog.Logger) (*poller, error) {
	return &poller{log: log, notify: notify, serve: serve, threaded: threaded}, nil
}

// set replaces the polled fds and notifies once each index in pending.
func (p *poller) set(watch []kickWatch, pending []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopReaders()
	if p.closed {
		return
	}
	var netpolled []kickWatch
	threads := map[int][]kickWatch{} // owner queue -> the queues its thread waits for
	var owners []int
	for _, w := range watch {
		owner := -1
		if p.serve != nil && p.threaded != nil {
			owner = p.threaded(w.index)
		}
		if owner < 0 {
			netpolled = append(netpolled, w)
			continue
		}
		if _, ok := threads[owner]; !ok {
			owners = append(owners, owner)
		}
		threads[owner] = append(threads[owner], w)
	}
	for _, w := range netpolled {
		p.start(p.startReader(w))
	}
	for _, owner := range owners {
		p.start(p.startThread(threads[owner]))
	}
	for _, i := range pending {
		p.notify(i)
	}
}

// start records a started reader, or logs why it could not start.
func (p *poller) start(r *kickReader, err error) {
	if err != nil {
		p.log.Error("vhost-user: cannot watch kick fd; ring not polled", "err", err)
		return
	}
	p.readers = append(p.readers, r)
}

// close stops every reader and waits for them.
func (p *poller) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stopReaders()
}

// stopReaders closes the readers' fds, which wakes a reader waiting for a
// kick, and waits until every reader has returned. Called with mu held.
func (p *poller) stopReaders() {
	for _, r := range p.readers {
		if r.file != nil {
			r.file.Close()
			<-r.done
			continue
		}
		r.wake()
		<-r.done
		r.closeFds()
	}
	p.readers = nil
}

func (p *poller) startReader(w kickWatch) (*kickReader, error) {
	fd, err := unix.FcntlInt(uintptr(w.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("queue %d: %w", w.index, err)
	}
	// The fd is non-blocking (adoptEventfd), so os.NewFile registers it
	// with the runtime's poller and Read waits there.
	r := &kickReader{index: w.index, file: os.NewFile(uintptr(fd), "vhost-user-kick"), stop: -1, ep: -1, done: make(chan struct{})}
	go p.read(r)
	return r, nil
}

// read serves every kick of one fd until its file is closed; a read
// error stops it (logged), so that a broken fd cannot make it spin.
//
// Tried and rejected: waiting for readiness before reading
// (RawConn.Read whose function first returns false), to save the read that
// finds the counter empty after each served kick (about 0.9 per request
// in guestbench; strace showed 8,000 fewer reads in 8,000 requests). The
// runtime resets a descriptor's readiness before each wait (prepareRead),
// as its convention is to try the syscall first, so a kick that came while
// the previous one was served was forgotten and waited for the next kick:
// TestNoCallFd hung (its used ring never moved) in 1 of 7 runs.
//
// It waits for the fd to be readable before it reads: os.File.Read reads
// first and waits on EAGAIN, which after every served kick cost a read
// that found the counter empty (12,364 of 26,911 reads, about 0.9 per
// request, in guestbench's create workload). The runtime's poller keeps
// an edge that came while nobody waited, so a kick that arrived while a
// request was served ends the wait at once.
func (p *poller) read(r *kickReader) {
	defer close(r.done)
	var buf [8]byte
	for {
		n, err := r.file.Read(buf[:])
		switch {
		case errors.Is(err, os.ErrClosed):
			return
		case err != nil || n != len(buf):
			p.log.Error("vhost-user: reading kick fd; ring no longer polled", "queue", r.index, "n", n, "err", err)
			return
		}
		if p.serve != nil {
			p.serve(r.index)
		} else {
			p.notify(r.index)
		}
	}
}
