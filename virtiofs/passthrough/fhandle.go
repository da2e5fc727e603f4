package passthrough

import (
	"bytes"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxHandleSize is MAX_HANDLE_SZ, the most bytes a file handle has.
const maxHandleSize = 128

// inlineHandle is how many handle bytes an inode holds in itself: ext4
// and XFS handles (8 or 12 bytes) and tmpfs's (12) fit, btrfs's (20) and
// overlayfs's do not and go to inode.hlong. 12 is what fills the inode to
// its 112-byte size class.
const inlineHandle = 12

// Markers in inode.hlen besides 1+len for an inline handle.
const (
	noHandle   = 0
	longHandle = 255
)

// fileHandle is a file handle as name_to_handle_at fills it, by value (on
// the stack), so taking one allocates nothing: unix.NameToHandleAt
// allocates its 40-byte buffer and the name's copy per call, and the
// table used to keep the buffer (48 bytes) and a pointer to it (8) per
// inode.
type fileHandle struct {
	n   uint32 // handle_bytes
	typ int32  // handle_type
	b   [maxHandleSize]byte
}

func (h *fileHandle) bytes() []byte { return h.b[:min(h.n, maxHandleSize)] }

// cName copies name, NUL-terminated, into buf for a system call: a name
// is one path component, at most NAME_MAX bytes.
func cName(buf *[unix.NAME_MAX + 1]byte, name string) (*byte, error) {
	if len(name) > unix.NAME_MAX {
		return nil, unix.ENAMETOOLONG
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, unix.EINVAL
	}
	copy(buf[:], name)
	buf[len(name)] = 0
	return &buf[0], nil
}

// nameToHandle is name_to_handle_at(2) of name ("" with AT_EMPTY_PATH:
// dirfd itself) into h, returning the mount id.
func nameToHandle(dirfd int, name string, flags int, h *fileHandle) (int, error) {
	var nb [unix.NAME_MAX + 1]byte
	p, err := cName(&nb, name)
	if err != nil {
		return 0, err
	}
	var mnt int32
	h.n = maxHandleSize
	_, _, e := unix.Syscall6(unix.SYS_NAME_TO_HANDLE_AT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(h)), uintptr(unsafe.Pointer(&mnt)), uintptr(flags), 0)
	if e != 0 {
		return 0, e
	}
	if h.n > maxHandleSize {
		return 0, unix.EOVERFLOW
	}
	return int(mnt), nil
}

// openByHandle is open_by_handle_at(2) of h on the mount open at mfd.
func openByHandle(mfd int, h *fileHandle, flags int) (int, error) {
	fd, _, e := unix.Syscall6(unix.SYS_OPEN_BY_HANDLE_AT, uintptr(mfd), uintptr(unsafe.Pointer(h)), uintptr(flags), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// setHandle stores h in the inode: inline when it fits, else in hlong.
func (in *inode) setHandle(h *fileHandle) {
	in.htyp = h.typ
	b := h.bytes()
	if len(b) <= inlineHandle {
		in.hlen = uint8(1 + len(b))
		copy(in.hbuf[:], b)
		in.hlong = nil
		return
	}
	in.hlen = longHandle
	long := bytes.Clone(b)
	in.hlong = &long
}

// hasHandle says whether the inode can be reopened by its file handle.
func (in *inode) hasHandle() bool { return in.hlen != noHandle }

// handleBytes is the stored handle's bytes (nil without one).
func (in *inode) handleBytes() []byte {
	switch in.hlen {
	case noHandle:
		return nil
	case longHandle:
		return *in.hlong
	}
	return in.hbuf[:in.hlen-1]
}

// sameHandle says whether the inode has a file handle and it is h.
func (in *inode) sameHandle(h *fileHandle) bool {
	return in.hasHandle() && in.htyp == h.typ && bytes.Equal(in.handleBytes(), h.bytes())
}

// getHandle copies the stored handle into h and reports whether there is one.
func (in *inode) getHandle(h *fileHandle) bool {
	if !in.hasHandle() {
		return false
	}
	b := in.handleBytes()
	h.typ, h.n = in.htyp, uint32(len(b))
	copy(h.b[:], b)
	return true
}
