package passthrough

import (
	"bytes"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// xattrOp pins nodeid for an xattr call on the inode's /proc/self/fd path
// and, unless the client kernel has checked access to name (see
// kernelCheckedXattr; "" for LISTXATTR, checked for what a caller says
// the kernel checked), switches to the caller. Symlinks
// are refused with refuse, as virtiofsd does. The returned func undoes it
// all.
func (fs *FS) xattrOp(r *fuse.Request, nodeid uint64, name string, checked bool, refuse fuse.Errno) (string, func(), fuse.Errno) {
	if !fs.xattr {
		return "", nil, unix.ENOSYS
	}
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return "", nil, e
	}
	if ino.typ == unix.S_IFLNK {
		fs.inodes.unpin(ino)
		return "", nil, refuse
	}
	sw := false
	if !checked && !kernelCheckedXattr(name) {
		if sw, e = fs.become(r.Caller); e != 0 {
			fs.inodes.unpin(ino)
			return "", nil, e
		}
	}
	return procPath(fd), func() {
		fs.unbecome(sw)
		fs.inodes.unpin(ino)
	}, fuse.OK
}

// kernelCheckedXattr reports whether the client kernel checks access to
// the attribute name against the caller's full credentials before sending
// the request: user.* needs read (get) or write (set, remove) permission on
// the inode, as its data does, so the server serves it with its own
// credentials (see creds.go). Other names are checked as the caller.
func kernelCheckedXattr(name string) bool {
	return strings.HasPrefix(name, "user.")
}

// privilegedXattr reports whether name needs capabilities that survive the
// fsuid switch (CAP_SYS_ADMIN, CAP_SETFCAP), so non-root callers are
// refused it here.
func privilegedXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.") || strings.HasPrefix(name, "security.")
}

// SetXattr sets an extended attribute.
func (fs *FS) SetXattr(r *fuse.Request, nodeid uint64, name string, value []byte, flags uint32) fuse.Errno {
	if privilegedXattr(name) && !fs.privileged(r.Caller) {
		return unix.EPERM
	}
	path, done, e := fs.xattrOp(r, nodeid, name, false, unix.EPERM)
	if e != 0 {
		return e
	}
	defer done()
	return errno(unix.Setxattr(path, name, value, int(flags)))
}

// GetXattr reads an extended attribute; a nil dst asks for its size.
func (fs *FS) GetXattr(r *fuse.Request, nodeid uint64, name string, dst []byte) (int, fuse.Errno) {
	if strings.HasPrefix(name, "trusted.") && !fs.privileged(r.Caller) {
		return 0, unix.ENODATA
	}
	path, done, e := fs.xattrOp(r, nodeid, name, false, unix.ENOTSUP)
	if e != 0 {
		return 0, e
	}
	defer done()
	n, err := unix.Getxattr(path, name, dst)
	if err != nil {
		return 0, errno(err)
	}
	return n, fuse.OK
}

// ListXattr lists extended attribute names; a nil dst asks for the size.
// trusted.* names are hidden from non-root callers, as the kernel does.
func (fs *FS) ListXattr(r *fuse.Request, nodeid uint64, dst []byte) (int, fuse.Errno) {
	path, done, e := fs.xattrOp(r, nodeid, "", false, unix.ENOTSUP)
	if e != 0 {
		return 0, e
	}
	defer done()
	if fs.privileged(r.Caller) {
		n, err := unix.Listxattr(path, dst)
		if err != nil {
			return 0, errno(err)
		}
		return n, fuse.OK
	}
	var buf []byte
	for {
		n, err := unix.Listxattr(path, nil)
		if err != nil {
			return 0, errno(err)
		}
		buf = make([]byte, n)
		if n, err = unix.Listxattr(path, buf); err == nil {
			buf = buf[:n]
			break
		}
		if err != unix.ERANGE {
			return 0, errno(err)
		}
	}
	var names []byte
	for name := range bytes.SplitSeq(buf, []byte{0}) {
		if len(name) > 0 && !bytes.HasPrefix(name, []byte("trusted.")) {
			names = append(append(names, name...), 0)
		}
	}
	if dst == nil {
		return len(names), fuse.OK
	}
	if len(names) > len(dst) {
		return 0, unix.ERANGE
	}
	return copy(dst, names), fuse.OK
}

// RemoveXattr removes an extended attribute.
//
// security.capability is removed with the server's credentials whoever
// asks: the client kernel refuses removexattr(2) of it to a caller without
// CAP_SETFCAP (cap_inode_removexattr), and sends it for a caller without
// that when it drops a file's capabilities itself, on the first write,
// truncate or chown by that caller (security_inode_killpriv, which skips
// the check). Run as the caller, that REMOVEXATTR failed with EPERM and
// the caller's write(2) with EIO (uid 1000 appending to a 0666 file with
// a capability, TestSetIDBitsClearedWithKillprivV2, before the change).
func (fs *FS) RemoveXattr(r *fuse.Request, nodeid uint64, name string) fuse.Errno {
	checked := name == "security.capability"
	if !checked && privilegedXattr(name) && !fs.privileged(r.Caller) {
		return unix.EPERM
	}
	path, done, e := fs.xattrOp(r, nodeid, name, checked, unix.EPERM)
	if e != 0 {
		return e
	}
	defer done()
	return errno(unix.Removexattr(path, name))
}
