package vhostuser

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// eventfdLink is what /proc/self/fd/N points to for an eventfd.
const eventfdLink = "anon_inode:[eventfd]"

// semaphoreEventfd reports whether the eventfd fd was created with
// EFD_SEMAPHORE, as /proc/self/fdinfo says (Linux 6.4 and later; older
// kernels do not say, and such an fd is taken as a plain one).
func semaphoreEventfd(fd int) bool {
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(info)) {
		if v, ok := strings.CutPrefix(line, "eventfd-semaphore:"); ok {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}

// adoptEventfd checks that fd, received from the front-end as the kick or
// call fd of a ring, is a plain eventfd (not in semaphore mode), and makes
// it non-blocking.
//
// Anything else is refused: /dev/zero or a regular file is always readable
// (the poller would spin), a pipe or socket can block or fill up. The
// O_NONBLOCK flag is set on the file description, which the front-end
// shares: QEMU creates its eventfds non-blocking already, so this changes
// nothing for it, and it guarantees that a read of a kick fd the front-end
// also reads, or a write to a call fd whose counter is at its maximum,
// returns EAGAIN instead of blocking the poller or a device worker.
func adoptEventfd(what string, fd int) error {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return protoErr("%s: cannot tell what the fd is (is /proc mounted?): %v", what, err)
	}
	if link != eventfdLink {
		return protoErr("%s: the fd is %q, not an eventfd", what, link)
	}
	if semaphoreEventfd(fd) {
		return protoErr("%s: the eventfd is in semaphore mode (EFD_SEMAPHORE): each read takes 1 from its counter, so one write could keep the poller busy for 2^64 reads", what)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return protoErr("%s: making the eventfd non-blocking: %v", what, err)
	}
	return nil
}
