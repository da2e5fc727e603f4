package vhostuser

import (
	"log/slog"
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
// Each kick fd (a duplicate, which the poller owns) is waited for by its
// own goroutine in a blocking ppoll(2), and the kick is served on that
// same goroutine (serve, Device.ServeKick when the device has it): kick,
// pop, serve, call, with no goroutine hand-off, as virtiofsd's queue
// thread does. Measured in the guest (bench/guestbench create workload,
// strace -c -f of the backend), the earlier design, a goroutine reading the
// kick fd through the runtime's network poller and handing the kick to
// the device's poller goroutine over a channel, made about 12 syscalls of
// overhead per request (futex 2.7, nanosleep 3.0, epoll_pwait 2.7, read
// 2.3 of which 1.1 EAGAIN, write 1.2): the thread wake-ups and spinning
// of the runtime's scheduler on each hand-off; virtiofsd makes 3 (ppoll,
// read, write).
//
// While a request is served inline, a watcher goroutine (blocked in
// epoll_wait on an epoll set of its own) has the kick fd armed, one-shot:
// a kick that comes meanwhile goes to Device.QueueNotify, whose helper
// hands the new requests to workers, so a slow or held request (a
// breakpoint) never holds up the queue. Arming costs two epoll_ctl calls
// per inline request and wakes nobody unless a kick comes.
//
// The kick fds are eventfds made non-blocking when they arrive
// (adoptEventfd): the front-end may read them too, and a read that finds
// the counter empty (EAGAIN) just waits for the next kick.
type poller struct {
	log    *slog.Logger
	notify func(index int)
	// serve handles a kick on the reader's goroutine; watch as for
	// virtiofs.Device.ServeKick. Nil: kicks go to notify.
	serve func(index int, watch func(on bool))

	mu      sync.Mutex
	readers []*kickReader
	closed  bool
}

// kickReader waits for the kicks of one fd.
type kickReader struct {
	index int
	fd    int // a duplicate of the kick fd
	stop  int // an eventfd, written to stop the reader and its watcher
	watch int // the watcher's epoll fd: stop always, fd one-shot while armed
	done  sync.WaitGroup
}

func newPoller(notify func(int), serve func(int, func(bool)), log *slog.Logger) (*poller, error) {
	return &poller{log: log, notify: notify, serve: serve}, nil
}

// set replaces the polled fds and notifies once each index in pending.
func (p *poller) set(watch []kickWatch, pending []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopReaders()
	if p.closed {
		return
	}
	for _, w := range watch {
		r, err := p.startReader(w)
		if err != nil {
			p.log.Error("vhost-user: cannot watch kick fd; ring not polled", "queue", w.index, "err", err)
			continue
		}
		p.readers = append(p.readers, r)
	}
	for _, i := range pending {
		p.notify(i)
	}
}

// close stops every reader and waits for them.
func (p *poller) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stopReaders()
}

// stopReaders signals the readers' stop eventfds, which wakes a reader
// waiting for a kick and its watcher, waits until both have returned, and
// closes their fds. Called with mu held.
func (p *poller) stopReaders() {
	for _, r := range p.readers {
		var one [8]byte
		ne.PutUint64(one[:], 1)
		unix.Write(r.stop, one[:])
		r.done.Wait()
		r.closeFds()
	}
	p.readers = nil
}

func (r *kickReader) closeFds() {
	for _, fd := range []int{r.fd, r.stop, r.watch} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (p *poller) startReader(w kickWatch) (*kickReader, error) {
	r := &kickReader{index: w.index, fd: -1, stop: -1, watch: -1}
	var err error
	if r.fd, err = unix.FcntlInt(uintptr(w.fd), unix.F_DUPFD_CLOEXEC, 0); err != nil {
		return nil, err
	}
	if r.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		r.closeFds()
		return nil, err
	}
	if r.watch, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		r.closeFds()
		return nil, err
	}
	err = unix.EpollCtl(r.watch, unix.EPOLL_CTL_ADD, r.stop, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(r.stop)})
	if err == nil {
		// registered disarmed: EPOLLONESHOT with no events never fires
		err = unix.EpollCtl(r.watch, unix.EPOLL_CTL_ADD, r.fd, &unix.EpollEvent{Events: unix.EPOLLONESHOT, Fd: int32(r.fd)})
	}
	if err != nil {
		r.closeFds()
		return nil, err
	}
	r.done.Add(2)
	go p.read(r)
	go p.watchKicks(r)
	return r, nil
}

// read serves every kick of one fd until the reader is stopped; an error
// stops it (logged), so that a broken fd cannot make it spin.
func (p *poller) read(r *kickReader) {
	defer r.done.Done()
	fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.stop), Events: unix.POLLIN}}
	arm := func(on bool) {
		ev := unix.EpollEvent{Fd: int32(r.fd), Events: unix.EPOLLONESHOT}
		if on {
			ev.Events |= unix.EPOLLIN
		}
		if err := unix.EpollCtl(r.watch, unix.EPOLL_CTL_MOD, r.fd, &ev); err != nil {
			p.log.Error("vhost-user: arming the kick watcher", "queue", r.index, "err", err)
		}
	}
	var buf [8]byte
	for {
		_, err := unix.Ppoll(fds, nil, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			p.log.Error("vhost-user: waiting for kicks; ring no longer polled", "queue", r.index, "err", err)
			return
		case fds[1].Revents != 0:
			return
		case fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0:
			p.log.Error("vhost-user: kick fd failed; ring no longer polled", "queue", r.index, "revents", fds[0].Revents)
			return
		case fds[0].Revents == 0:
			continue
		}
		n, err := unix.Read(r.fd, buf[:])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			continue // the front-end took the kick
		case err != nil || n != len(buf):
			p.log.Error("vhost-user: reading kick fd; ring no longer polled", "queue", r.index, "n", n, "err", err)
			return
		}
		if p.serve != nil {
			p.serve(r.index, arm)
		} else {
			p.notify(r.index)
		}
	}
}

// watchKicks passes to notify the kicks that come while read serves a
// request inline (the kick fd armed), until the reader is stopped.
func (p *poller) watchKicks(r *kickReader) {
	defer r.done.Done()
	events := make([]unix.EpollEvent, 2)
	for {
		n, err := unix.EpollWait(r.watch, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.log.Error("vhost-user: kick watcher stopped", "queue", r.index, "err", err)
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(r.stop) {
				return
			}
		}
		if n > 0 {
			p.notify(r.index)
		}
	}
}
