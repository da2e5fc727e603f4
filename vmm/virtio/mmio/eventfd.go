package mmio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// EventfdInterrupt is an Interrupt that signals an eventfd; the VMM
// registers the fd with KVM_IRQFD for the device's GSI, so Trigger injects
// the interrupt without leaving the kernel.
type EventfdInterrupt struct {
	fd int
}

// NewEventfdInterrupt creates the eventfd (EFD_NONBLOCK | EFD_CLOEXEC).
func NewEventfdInterrupt() (*EventfdInterrupt, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mmio: eventfd: %w", err)
	}
	return &EventfdInterrupt{fd: fd}, nil
}

// FD returns the eventfd to pass to KVM_IRQFD.
func (e *EventfdInterrupt) FD() int { return e.fd }

// Trigger adds 1 to the eventfd counter. EAGAIN (counter saturated, so an
// interrupt is pending anyway) is not an error.
func (e *EventfdInterrupt) Trigger() error {
	if err := signalEventfd(e.fd); err != nil {
		return fmt.Errorf("mmio: irqfd: %w", err)
	}
	return nil
}

// Close closes the eventfd; unregister it from KVM first.
func (e *EventfdInterrupt) Close() error { return unix.Close(e.fd) }

func signalEventfd(fd int) error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	for {
		_, err := unix.Write(fd, one[:])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return nil
		}
		return err
	}
}

// NewEventfds creates n eventfds (EFD_NONBLOCK | EFD_CLOEXEC), one per
// queue, for ServeIoeventfds. On error none are left open.
func NewEventfds(n int) ([]int, error) {
	fds := make([]int, 0, n)
	for range n {
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			CloseEventfds(fds)
			return nil, fmt.Errorf("mmio: eventfd: %w", err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

// CloseEventfds closes fds, ignoring negative entries.
func CloseEventfds(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// IoeventfdServer forwards kicks signalled on eventfds to a transport. The
// VMM registers fds[i] with KVM_IOEVENTFD at the window base plus
// NotifyOffset, 4 bytes, with datamatch = i, so that the guest's write of
// i to QueueNotify signals fds[i] instead of exiting to user space.
type IoeventfdServer struct {
	t    *Transport
	fds  []int
	wake int
	log  *slog.Logger
	once sync.Once
	done chan struct{}
}

// ServeIoeventfds starts a goroutine polling fds (one per queue; a negative
// entry is skipped) and calling t.Kick(i) whenever fds[i] is signalled.
// The caller keeps ownership of fds and closes them after Close.
func (t *Transport) ServeIoeventfds(fds []int) (*IoeventfdServer, error) {
	if len(fds) > len(t.queues) {
		return nil, fmt.Errorf("mmio: %d ioeventfds for %d queues", len(fds), len(t.queues))
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mmio: eventfd: %w", err)
	}
	s := &IoeventfdServer{t: t, fds: append([]int(nil), fds...), wake: wake, log: t.log, done: make(chan struct{})}
	go s.run()
	return s, nil
}

// Close stops the goroutine and waits for it; after Close returns no kick
// is delivered. It does not close the queue eventfds.
func (s *IoeventfdServer) Close() error {
	s.once.Do(func() {
		if err := signalEventfd(s.wake); err != nil {
			s.log.Error("virtio-mmio: waking ioeventfd poller", "err", err)
		}
		<-s.done
		unix.Close(s.wake)
	})
	return nil
}

func (s *IoeventfdServer) run() {
	defer close(s.done)
	pfds := []unix.PollFd{{Fd: int32(s.wake), Events: unix.POLLIN}}
	index := []int{-1}
	for i, fd := range s.fds {
		if fd >= 0 {
			pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			index = append(index, i)
		}
	}
	var buf [8]byte
	for {
		if _, err := unix.Poll(pfds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			s.log.Error("virtio-mmio: polling ioeventfds; kicks stop", "err", err)
			return
		}
		if pfds[0].Revents != 0 {
			return
		}
		for k := 1; k < len(pfds); k++ {
			re := pfds[k].Revents
			if re == 0 {
				continue
			}
			if re&unix.POLLIN == 0 {
				s.log.Error("virtio-mmio: ioeventfd failed; no longer polled", "queue", index[k], "revents", re)
				pfds[k].Fd = -1 // poll ignores negative fds
				continue
			}
			_, err := unix.Read(int(pfds[k].Fd), buf[:])
			if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
				s.log.Error("virtio-mmio: reading ioeventfd; no longer polled", "queue", index[k], "err", err)
				pfds[k].Fd = -1
				continue
			}
			s.t.Kick(index[k])
		}
	}
}
