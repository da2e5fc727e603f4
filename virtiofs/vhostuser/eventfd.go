package vhostuser

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// eventfdLink is what /proc/self/fd/N points to for an eventfd.
const eventfdLink = "anon_inode:[eventfd]"

// adoptEventfd checks that fd, received from the front-end as the kick or
// call fd of a ring, is an eventfd, and makes it non-blocking.
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
	if err := unix.SetNonblock(fd, true); err != nil {
		return protoErr("%s: making the eventfd non-blocking: %v", what, err)
	}
	return nil
}
