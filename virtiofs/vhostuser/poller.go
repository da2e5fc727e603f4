package vhostuser

import (
	"errors"
	"log/slog"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// kickWatch is one kick eventfd to poll and the queue it belongs to.
type kickWatch struct {
	index int
	fd    int
}

// poller waits on the kick eventfds of the running rings and forwards each
// kick to the device, from a single goroutine. The set of fds is replaced
// with set, which returns only once the goroutine has picked up the new
// set: from then on it neither polls nor reads an fd of the old set, nor is
// it inside a notify call for it, so the caller may close those fds or reset
// the device.
//
// The kick fds are eventfds made non-blocking when they arrive
// (adoptEventfd): the front-end may read them too, so a kick fd is only read
// after poll reports it readable, and EAGAIN is expected.
type poller struct {
	log    *slog.Logger
	notify func(index int)
	wake   int // eventfd interrupting poll on reconfiguration

	mu      sync.Mutex
	cond    sync.Cond
	watch   []kickWatch
	pending []int  // queues to notify once, without a kick
	gen     uint64 // incremented by set
	seen    uint64 // the generation the goroutine runs with
	stop    bool
	done    chan struct{}
}

func newPoller(notify func(int), log *slog.Logger) (*poller, error) {
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{log: log, notify: notify, wake: wake, done: make(chan struct{})}
	p.cond.L = &p.mu
	go p.run()
	return p, nil
}

// set replaces the polled fds and queues a notification for each index in
// pending, then waits until the poller runs with the new set.
func (p *poller) set(watch []kickWatch, pending []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watch = slices.Clone(watch)
	p.pending = append(p.pending, pending...)
	p.gen++
	gen := p.gen
	p.kick()
	for p.seen < gen && !p.stop {
		p.cond.Wait()
	}
}

// close stops the goroutine, waits for it and closes the wake fd.
func (p *poller) close() {
	p.mu.Lock()
	p.stop = true
	p.kick()
	p.cond.Broadcast()
	p.mu.Unlock()
	<-p.done
	unix.Close(p.wake)
}

func (p *poller) kick() {
	var one [8]byte
	ne.PutUint64(one[:], 1)
	_, _ = unix.Write(p.wake, one[:])
}

func (p *poller) run() {
	defer close(p.done)
	var pfds []unix.PollFd
	var buf [8]byte
	for {
		p.mu.Lock()
		if p.stop {
			p.mu.Unlock()
			return
		}
		watch, pending, gen := p.watch, p.pending, p.gen
		p.pending = nil
		p.seen = gen
		p.cond.Broadcast()
		p.mu.Unlock()

		for _, i := range pending {
			p.notify(i)
		}
		pfds = append(pfds[:0], unix.PollFd{Fd: int32(p.wake), Events: unix.POLLIN})
		for _, w := range watch {
			pfds = append(pfds, unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN})
		}
		if _, err := unix.Poll(pfds, -1); err != nil {
			if !errors.Is(err, unix.EINTR) {
				p.log.Error("vhost-user: polling kick fds", "err", err)
				p.muteAll(gen)
			}
			continue
		}
		if pfds[0].Revents&unix.POLLIN != 0 {
			_, _ = unix.Read(p.wake, buf[:])
		}
		for k, w := range watch {
			re := pfds[k+1].Revents
			if re == 0 {
				continue
			}
			if re&unix.POLLIN == 0 {
				p.log.Error("vhost-user: kick fd failed; ring no longer polled", "queue", w.index, "revents", re)
				p.mute(gen, w)
				continue
			}
			n, err := unix.Read(w.fd, buf[:])
			switch {
			case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			case err != nil || n != len(buf):
				p.log.Error("vhost-user: reading kick fd; ring no longer polled", "queue", w.index, "n", n, "err", err)
				p.mute(gen, w)
			default:
				p.notify(w.index)
			}
		}
	}
}

// mute stops polling a failed fd until the next set, so that a broken fd
// cannot make the loop spin.
func (p *poller) mute(gen uint64, w kickWatch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == gen {
		p.watch = slices.DeleteFunc(slices.Clone(p.watch), func(x kickWatch) bool { return x == w })
	}
}

func (p *poller) muteAll(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == gen {
		p.watch = nil
	}
}
