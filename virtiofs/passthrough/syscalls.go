package passthrough

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// System calls of the request paths that golang.org/x/sys/unix would
// allocate for: its Preadv and Pwritev build their iovec list by append
// from a capacity of 8, so a guest READ (or WRITE) of 128 KiB in 32
// page-sized buffers grew it twice on the heap (256 and 512 bytes, 2
// allocations a READ: about 1.5 MiB of garbage over guestbench's 256 MiB
// read, during which the backend's RssAnon grew by 1.6 MiB in the 12:05
// bench-session), and its Openat and Unlinkat copy the name to the heap
// to NUL-terminate it (one allocation per CREATE and per UNLINK). These
// keep both on the stack; TestGuestRequestAllocs (package virtiofs)
// holds the counts.
//
// Measured with the LOOKUP/UNLINK name fix in fuse's reader.cstring
// (guestbench -bin-b against main at fdf6d5a, 5 rounds rotated with
// virtiofsd in one run, default settings, TCG guest, busy 2-core
// machine; backend CPU per 1,000 requests, /proc's 10 ms ticks): read
// 92.4 against 107.0 ms, new over main per round 0.90, 0.86, 0.79, 0.86,
// 0.76 (over virtiofsd's 1.06x against 1.22x), and the backend's RssAnon
// after it 5.3-5.4 MiB against 6.5-6.8; stat 37.0 against 38.4 ms, per
// round 1.14, 1.00, 0.79, 0.91, 0.80 (median 0.91: inside the noise);
// create 24.3 against 24.7 ms, per round 0.99, 0.90, 1.12, 0.99, 0.71.

// stackIovecs is how many buffers a READ or WRITE may have before its
// iovec list goes to the heap: 64 covers 256 KiB in pages (the guest's
// readahead READs are 128 KiB) for 1 KiB of stack.
const stackIovecs = 64

// iovecs returns one iovec per non-empty buffer of bufs (an empty one
// moves no byte), in stack when they fit, else in a heap slice.
func iovecs(stack *[stackIovecs]unix.Iovec, bufs [][]byte) []unix.Iovec {
	dst := stack[:0]
	if len(bufs) > len(stack) {
		dst = make([]unix.Iovec, 0, len(bufs))
	}
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		dst = append(dst, v)
	}
	return dst
}

// preadv is preadv(2) of fd at off into bufs. It makes the call itself
// rather than through a helper shared with pwritev, so that
// guestbench -profile, which names a system call the kernel's stack does
// not by the Go function that made it, still says preadv.
func preadv(fd int, bufs [][]byte, off int64) (int, error) {
	var stack [stackIovecs]unix.Iovec
	iov := iovecs(&stack, bufs)
	n, _, e := unix.Syscall6(unix.SYS_PREADV, uintptr(fd), uintptr(first(iov)), uintptr(len(iov)), uintptr(off), 0, 0)
	return int(n), errnoErr(e)
}

// pwritev is pwritev(2) of bufs to fd at off.
func pwritev(fd int, bufs [][]byte, off int64) (int, error) {
	var stack [stackIovecs]unix.Iovec
	iov := iovecs(&stack, bufs)
	n, _, e := unix.Syscall6(unix.SYS_PWRITEV, uintptr(fd), uintptr(first(iov)), uintptr(len(iov)), uintptr(off), 0, 0)
	return int(n), errnoErr(e)
}

// first is the address of iov's first element, nil for none. The offset
// of preadv and pwritev goes whole in pos_l, as on every 64-bit host.
func first(iov []unix.Iovec) unsafe.Pointer {
	if len(iov) == 0 {
		return nil
	}
	return unsafe.Pointer(&iov[0])
}

// errnoErr is nil for 0, else e; a failed call's count is not used.
func errnoErr(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// openat is openat(2) of name (one component) in dirfd.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	var nb [unix.NAME_MAX + 1]byte
	p, err := cName(&nb, name)
	if err != nil {
		return -1, err
	}
	fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(flags|unix.O_LARGEFILE), uintptr(mode), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// unlinkat is unlinkat(2) of name (one component) in dirfd.
func unlinkat(dirfd int, name string, flags int) error {
	var nb [unix.NAME_MAX + 1]byte
	p, err := cName(&nb, name)
	if err != nil {
		return err
	}
	_, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(flags))
	if e != 0 {
		return e
	}
	return nil
}
