package passthrough

import (
	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// StatFs reports the host filesystem's statistics.
func (fs *FS) StatFs(r *fuse.Request, nodeid uint64, out *fuse.StatfsOut) fuse.Errno {
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(ino)
	var s unix.Statfs_t
	if err := unix.Fstatfs(fd, &s); err != nil {
		return errno(err)
	}
	*out = fuse.StatfsOut{
		Blocks:  s.Blocks,
		Bfree:   s.Bfree,
		Bavail:  s.Bavail,
		Files:   s.Files,
		Ffree:   s.Ffree,
		Bsize:   uint32(s.Bsize),
		Namelen: uint32(s.Namelen),
		Frsize:  uint32(s.Frsize),
	}
	return fuse.OK
}

// Access checks mask against the caller's credentials: faccessat2 with
// AT_EACCESS under the switched fsuid/fsgid (see creds.go).
func (fs *FS) Access(r *fuse.Request, nodeid uint64, mask uint32) fuse.Errno {
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(ino)
	sw, e := fs.become(r.Caller)
	if e != 0 {
		return e
	}
	defer fs.unbecome(sw)
	return errno(unix.Faccessat2(fd, "", mask, unix.AT_EMPTY_PATH|unix.AT_EACCESS|unix.AT_SYMLINK_NOFOLLOW))
}

// Ioctl refuses every ioctl; the exit-code ioctl is served above this
// filesystem by the /init.krun overlay.
func (fs *FS) Ioctl(r *fuse.Request, nodeid uint64, in *fuse.IoctlIn, inData []byte, outData []byte) (int32, int, fuse.Errno) {
	return 0, 0, unix.ENOTTY
}

// SyncFs syncs the host filesystems the share spans.
func (fs *FS) SyncFs(r *fuse.Request, nodeid uint64) fuse.Errno {
	fds := fs.inodes.mountFDs()
	if len(fds) == 0 {
		root := fs.inodes.root
		fd, err := fs.reopen(root, int(root.fd), unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return errno(err)
		}
		defer unix.Close(fd)
		fds = []int{fd}
	}
	for _, fd := range fds {
		if err := unix.Syncfs(fd); err != nil {
			return errno(err)
		}
	}
	return fuse.OK
}
