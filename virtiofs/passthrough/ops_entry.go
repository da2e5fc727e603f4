package passthrough

import (
	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// lookupAt opens name (one component, never followed) in the directory open
// at pfd, registers it and fills out.
// want, unless negative, is the mode a just-created inode was asked to have
// (see fixMode). epoch is the table's when the operation began.
func (fs *FS) lookupAt(epoch, parent uint64, pfd int, name string, want int64, out *fuse.EntryOut) fuse.Errno {
	fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return errno(err)
	}
	return fs.enter(epoch, parent, name, fd, want, out)
}

// enter registers the inode open at the O_PATH descriptor fd (which it
// takes over) as name in parent and fills out; a reset since epoch makes
// it ESTALE.
func (fs *FS) enter(epoch, parent uint64, name string, fd int, want int64, out *fuse.EntryOut) fuse.Errno {
	var st unix.Stat_t
	if err := statFD(fd, &st); err != nil {
		unix.Close(fd)
		return errno(err)
	}
	if want >= 0 && fs.fixMode(st.Mode, uint32(want)) {
		mode := st.Mode&0o7000 | uint32(want)&0o777
		if unix.Fchmodat(fs.procFD, procName(fd), mode, 0) == nil {
			st.Mode = st.Mode&unix.S_IFMT | mode
		}
	}
	if name == "." || name == ".." {
		name = ""
	}
	id, e := fs.inodes.register(epoch, parent, name, fd, &st)
	if e != 0 {
		return e
	}
	fs.fillEntry(out, id, &st)
	return fuse.OK
}

// Lookup resolves name in parent. "." is parent itself and ".." its host
// parent, except at the root, whose ".." is the root: LOOKUP never leaves
// the share.
func (fs *FS) Lookup(r *fuse.Request, parent uint64, name string, out *fuse.EntryOut) fuse.Errno {
	epoch := fs.inodes.session()
	if name != "." && name != ".." {
		if e := checkName(name); e != 0 {
			return e
		}
	}
	p, pfd, e := fs.inodes.pin(parent)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(p)
	if p.typ != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	if name == "." || (name == ".." && p == fs.inodes.root) {
		name = "."
	}
	return fs.lookupFast(epoch, parent, pfd, name, out)
}

// Forget drops nlookup lookups of nodeid.
func (fs *FS) Forget(nodeid, nlookup uint64) { fs.inodes.forget(nodeid, nlookup) }

// GetAttr stats nodeid, through the open handle when the client names one.
func (fs *FS) GetAttr(r *fuse.Request, nodeid uint64, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Errno {
	var st unix.Stat_t
	if in != nil && in.GetattrFlags&fuse.GetattrFh != 0 {
		if h, e := fs.getHandleFor(in.Fh, nodeid); e == 0 {
			err := unix.Fstat(h.fd, &st)
			h.put()
			if err != nil {
				return errno(err)
			}
			fs.fillAttrOut(out, &st)
			return fuse.OK
		}
	}
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(ino)
	if err := statFD(fd, &st); err != nil {
		return errno(err)
	}
	fs.fillAttrOut(out, &st)
	return fuse.OK
}

// SetAttr changes mode, owner, size and times, in that order, with the
// server's own credentials, as virtiofsd does: the client kernel has
// already decided (see the SETATTR note in creds.go).
func (fs *FS) SetAttr(_ *fuse.Request, nodeid uint64, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Errno {
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(ino)
	var h *handle
	if in.Valid&fuse.FattrFh != 0 {
		if h, e = fs.getHandleFor(in.Fh, nodeid); e != 0 {
			return e
		}
		defer h.put()
	}
	if in.Valid&fuse.FattrMode != 0 {
		if ino.typ == unix.S_IFLNK {
			return unix.EOPNOTSUPP
		}
		if err := unix.Fchmodat(fs.procFD, procName(fd), in.Mode&0o7777, 0); err != nil {
			return errno(err)
		}
	}
	if in.Valid&(fuse.FattrUID|fuse.FattrGID) != 0 {
		uid, gid := -1, -1
		if in.Valid&fuse.FattrUID != 0 {
			uid = int(in.Uid)
		}
		if in.Valid&fuse.FattrGID != 0 {
			gid = int(in.Gid)
		}
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return errno(err)
		}
	}
	if in.Valid&fuse.FattrSize != 0 {
		// FATTR_KILL_SUIDGID with a size: the caller lacks CAP_FSETID, so
		// the host truncates without it and clears the set-id bits. On a
		// chown the host clears them whatever the capabilities.
		dropped := false
		if in.Valid&fuse.FattrKillSuid != 0 {
			if dropped, e = fs.dropFsetid(); e != 0 {
				return e
			}
		}
		e := fs.truncate(ino, fd, h, int64(in.Size))
		fs.restoreFsetid(dropped)
		if e != 0 {
			return e
		}
	}
	if in.Valid&(fuse.FattrAtime|fuse.FattrMtime|fuse.FattrAtimeNow|fuse.FattrMtimeNow) != 0 {
		ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		switch {
		case in.Valid&fuse.FattrAtimeNow != 0:
			ts[0].Nsec = unix.UTIME_NOW
		case in.Valid&fuse.FattrAtime != 0:
			ts[0] = unix.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
		}
		switch {
		case in.Valid&fuse.FattrMtimeNow != 0:
			ts[1].Nsec = unix.UTIME_NOW
		case in.Valid&fuse.FattrMtime != 0:
			ts[1] = unix.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
		}
		if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return errno(err)
		}
	}
	var st unix.Stat_t
	if err := statFD(fd, &st); err != nil {
		return errno(err)
	}
	fs.fillAttrOut(out, &st)
	return fuse.OK
}

// truncate sets the size through the open handle h if given, else through
// a write-only reopen of the inode.
func (fs *FS) truncate(ino *inode, fd int, h *handle, size int64) fuse.Errno {
	if h != nil {
		return errno(unix.Ftruncate(h.fd, size))
	}
	switch ino.typ {
	case unix.S_IFDIR:
		return unix.EISDIR
	case unix.S_IFREG:
	default:
		return unix.EINVAL
	}
	wfd, err := fs.reopen(ino, fd, unix.O_WRONLY)
	if err != nil {
		return errno(err)
	}
	defer unix.Close(wfd)
	return errno(unix.Ftruncate(wfd, size))
}

// Readlink returns the target of a symlink, as stored (never resolved).
func (fs *FS) Readlink(r *fuse.Request, nodeid uint64) ([]byte, fuse.Errno) {
	ino, fd, e := fs.inodes.pin(nodeid)
	if e != 0 {
		return nil, e
	}
	defer fs.inodes.unpin(ino)
	if ino.typ != unix.S_IFLNK {
		return nil, unix.EINVAL
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return nil, errno(err)
	}
	return buf[:n], fuse.OK
}

// create runs mk (as the new inode's owner, see creds.go) to make name in
// parent, then looks it up.
// want is the mode asked for, or -1 for symlinks.
func (fs *FS) create(r *fuse.Request, parent uint64, name string, want int64, out *fuse.EntryOut, mk func(pfd int) error) fuse.Errno {
	epoch := fs.inodes.session()
	if e := checkName(name); e != 0 {
		return e
	}
	p, pfd, e := fs.inodes.pin(parent)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(p)
	sw, e := fs.becomeOwner(r.Caller, true)
	if e != 0 {
		return e
	}
	defer fs.unbecome(sw)
	if err := mk(pfd); err != nil {
		return errno(err)
	}
	return fs.lookupAt(epoch, parent, pfd, name, want, out)
}

// fixMode reports whether a new file's mode got the process umask applied
// on top of the client's (the client's umask was already applied), so it
// must be chmod-ed to what the client asked for. A mode that matches
// neither (a default ACL decided it) is left alone.
func (fs *FS) fixMode(got, want uint32) bool {
	w := want & 0o777
	return w&fs.umask != 0 && got&0o777 == w&^fs.umask
}

// Mkdir makes a directory.
func (fs *FS) Mkdir(r *fuse.Request, parent uint64, name string, in *fuse.MkdirIn, out *fuse.EntryOut) fuse.Errno {
	mode := in.Mode & 0o7777 &^ in.Umask
	return fs.create(r, parent, name, int64(mode), out, func(pfd int) error {
		return unix.Mkdirat(pfd, name, mode)
	})
}

// Mknod makes a regular file, fifo, socket or (for root callers only) a
// device node. CAP_MKNOD survives the fsuid switch, so the check is ours.
func (fs *FS) Mknod(r *fuse.Request, parent uint64, name string, in *fuse.MknodIn, out *fuse.EntryOut) fuse.Errno {
	typ := in.Mode & unix.S_IFMT
	if (typ == unix.S_IFCHR || typ == unix.S_IFBLK) && !fs.privileged(r.Caller) {
		return unix.EPERM
	}
	mode := in.Mode &^ (in.Umask & 0o777)
	return fs.create(r, parent, name, int64(mode&0o7777), out, func(pfd int) error {
		return unix.Mknodat(pfd, name, mode, int(in.Rdev))
	})
}

// Symlink makes a symlink holding target, which is stored and never
// resolved on the host.
func (fs *FS) Symlink(r *fuse.Request, parent uint64, name, target string, out *fuse.EntryOut) fuse.Errno {
	return fs.create(r, parent, name, -1, out, func(pfd int) error {
		return unix.Symlinkat(target, pfd, name)
	})
}

// Link makes newName in newParent a hard link to nodeid, with the server's
// credentials (the client kernel checked, protected_hardlinks included).
// It goes through /proc/self/fd because linkat's AT_EMPTY_PATH needs
// CAP_DAC_READ_SEARCH.
func (fs *FS) Link(r *fuse.Request, nodeid, newParent uint64, newName string, out *fuse.EntryOut) fuse.Errno {
	epoch := fs.inodes.session()
	if e := checkName(newName); e != 0 {
		return e
	}
	ino, fd, p, pfd, e := fs.inodes.pin2(nodeid, newParent)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(ino)
	defer fs.inodes.unpin(p)
	if ino.typ == unix.S_IFDIR {
		return unix.EPERM
	}
	if err := unix.Linkat(fs.procFD, procName(fd), pfd, newName, unix.AT_SYMLINK_FOLLOW); err != nil {
		return errno(err)
	}
	return fs.lookupAt(epoch, newParent, pfd, newName, -1, out)
}

// remove unlinks name from parent with the server's credentials (the
// client kernel checked, sticky directories included).
func (fs *FS) remove(r *fuse.Request, parent uint64, name string, flags int) fuse.Errno {
	if e := checkName(name); e != 0 {
		return e
	}
	p, pfd, e := fs.inodes.pin(parent)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(p)
	return errno(unlinkat(pfd, name, flags))
}

// Unlink removes a non-directory.
func (fs *FS) Unlink(r *fuse.Request, parent uint64, name string) fuse.Errno {
	return fs.remove(r, parent, name, 0)
}

// Rmdir removes an empty directory.
func (fs *FS) Rmdir(r *fuse.Request, parent uint64, name string) fuse.Errno {
	return fs.remove(r, parent, name, unix.AT_REMOVEDIR)
}

// renameFlags are the renameat2 flags a client may pass.
const renameFlags = unix.RENAME_NOREPLACE | unix.RENAME_EXCHANGE | unix.RENAME_WHITEOUT

// Rename moves name in parent to newName in newParent (renameat2 flags),
// with the server's credentials; a RENAME_WHITEOUT's whiteout is created,
// so it is owned by the caller (see creds.go).
func (fs *FS) Rename(r *fuse.Request, parent uint64, name string, newParent uint64, newName string, flags uint32) fuse.Errno {
	if e := checkName(name); e != 0 {
		return e
	}
	if e := checkName(newName); e != 0 {
		return e
	}
	if flags&^renameFlags != 0 {
		return unix.EINVAL
	}
	p, pfd, np, npfd, e := fs.inodes.pin2(parent, newParent)
	if e != 0 {
		return e
	}
	defer fs.inodes.unpin(p)
	defer fs.inodes.unpin(np)
	sw := false
	if flags&unix.RENAME_WHITEOUT != 0 {
		sw, e = fs.becomeOwner(r.Caller, true)
	}
	if e != 0 {
		return e
	}
	defer fs.unbecome(sw)
	if err := unix.Renameat2(pfd, name, npfd, newName, uint(flags)); err != nil {
		return errno(err)
	}
	var st unix.Stat_t
	if unix.Fstatat(npfd, newName, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		fs.inodes.rename(&st, newParent, newName)
	}
	if flags&unix.RENAME_EXCHANGE != 0 && unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		fs.inodes.rename(&st, parent, name)
	}
	return fuse.OK
}
