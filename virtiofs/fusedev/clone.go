package fusedev

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// devIocClone is FUSE_DEV_IOC_CLONE, _IOR(229, 0, uint32_t) in
// <linux/fuse.h>: on a fresh open of /dev/fuse, attach that file to the
// connection of the session fd passed as the argument.
const devIocClone = 0x8004e500

// Cloned device descriptors (FUSE_DEV_IOC_CLONE).
//
// Every worker serves through a /dev/fuse descriptor of its own, cloned
// from the session's, as libfuse's clone_fd does per thread. The kernel
// (fs/fuse/dev.c) keeps one input queue per connection, shared by every
// clone: a read(2) on any of them takes the next request, and readers
// still wait on one queue and are woken one at a time. What a clone has
// of its own is its struct fuse_dev and so its processing list: a
// request read from a clone sits in that clone's list until its reply,
// and fuse_dev_do_write looks the reply's unique up in the list of the
// descriptor written to, so a reply written to another clone fails with
// ENOENT and its caller waits forever. A worker therefore reads,
// splices and replies on its own descriptor only (loop). Notifications
// (no unique) may go to any descriptor.
//
// Stopping: unmount or a fusectl abort ends the connection, and every
// clone's read(2) returns ENODEV, as the session fd's does. A worker
// closes its clone when its loop ends; closing a clone whose processing
// list is empty (the worker replied to all it read) only drops a
// reference, and the connection ends when the last descriptor (the
// session's, Mount.dev) closes.
//
// Where the clone fails (an old kernel without the ioctl, or the open
// fails: EMFILE), the worker serves the session fd as before; cloneFailures
// counts those.

// cloneDevice opens /dev/fuse again and attaches the new descriptor to
// session's connection. The caller closes it.
func cloneDevice(session int) (int, error) {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	arg := uint32(session)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), devIocClone, uintptr(unsafe.Pointer(&arg))); e != 0 {
		unix.Close(fd)
		return -1, e
	}
	return fd, nil
}

// workerDevice returns the descriptor a new worker (startWorker) serves: a clone of
// the session fd, or the session fd itself where cloning fails or is off
// (Options.NoClone). done closes a clone; it leaves the session fd open.
func (m *Mount) workerDevice(session int) (fd int, done func()) {
	if m.noClone {
		return session, func() {}
	}
	fd, err := cloneDevice(session)
	if err != nil {
		m.cloneFailures.Add(1)
		return session, func() {}
	}
	m.clones.Add(1)
	return fd, func() {
		unix.Close(fd)
		m.clones.Add(-1)
	}
}
