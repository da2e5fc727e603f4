package fuse

import (
	"errors"
	"math"
	"syscall"
)

// Handlers decode what follows the fixed argument struct (whose size the
// dispatcher already checked), call the FileSystem, and encode the reply.

const maxXattrSize = 64 << 10
const maxIoctlSize = 16 << 10
const maxPathLen = 4096

func nameErr(err error) Errno {
	if errors.Is(err, ErrTooLarge) {
		return syscall.ENAMETOOLONG
	}
	return syscall.EINVAL
}

func (s *Server) name(sc *scratch) (string, Errno) {
	n, err := sc.r.cstring(MaxNameLen)
	if err != nil {
		return "", nameErr(err)
	}
	sc.ev.Name = n
	return n, 0
}

func (s *Server) entryReply(sc *scratch, e *EntryOut, errno Errno) Errno {
	if errno != 0 {
		return errno
	}
	sc.ev.NewNodeid = e.Nodeid
	sc.w.put(asBytes(e))
	return 0
}

func (s *Server) destroyOp(sc *scratch, h *InHeader) Errno {
	s.Reset()
	return 0
}

func (s *Server) lookupOp(sc *scratch, h *InHeader) Errno {
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	e := sc.replies.entry()
	return s.entryReply(sc, e, s.fs.Lookup(&sc.req, h.Nodeid, name, e))
}

func (s *Server) forgetOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[ForgetIn](&sc.r)
	sc.ev.Size = uint32(min(in.Nlookup, 1<<32-1))
	s.fs.Forget(h.Nodeid, in.Nlookup)
	return 0
}

func (s *Server) batchForgetOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[BatchForgetIn](&sc.r)
	done := uint32(0)
	for ; done < in.Count; done++ {
		one, ok := decodeArg[ForgetOne](&sc.r)
		if !ok {
			s.log.Warn("BATCH_FORGET shorter than its count", "count", in.Count, "read", done)
			break
		}
		s.fs.Forget(one.Nodeid, one.Nlookup)
	}
	sc.ev.Size = done
	return 0
}

func (s *Server) interruptOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[InterruptIn](&sc.r)
	sc.ev.Offset = in.Unique
	return 0
}

func (s *Server) getattrOp(sc *scratch, h *InHeader) Errno {
	in := &sc.replies.getattrIn
	*in, _ = decodeArg[GetAttrIn](&sc.r)
	sc.ev.Flags, sc.ev.Fh = in.GetattrFlags, in.Fh
	out := sc.replies.attrOut()
	if errno := s.fs.GetAttr(&sc.req, h.Nodeid, in, out); errno != 0 {
		return errno
	}
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) setattrOp(sc *scratch, h *InHeader) Errno {
	in := argIn[SetAttrIn](sc)
	sc.ev.Flags, sc.ev.Fh, sc.ev.Mode, sc.ev.Offset = in.Valid, in.Fh, in.Mode, in.Size
	s.policy.setattr(in)
	out := sc.replies.attrOut()
	if errno := s.fs.SetAttr(&sc.req, h.Nodeid, in, out); errno != 0 {
		return errno
	}
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) readlinkOp(sc *scratch, h *InHeader) Errno {
	target, errno := s.fs.Readlink(&sc.req, h.Nodeid)
	if errno != 0 {
		return errno
	}
	if !sc.w.put(target) {
		return syscall.ERANGE
	}
	sc.ev.Bytes = len(target)
	return 0
}

func (s *Server) symlinkOp(sc *scratch, h *InHeader) Errno {
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	target, err := sc.r.cstring(maxPathLen)
	if err != nil {
		return nameErr(err)
	}
	sc.ev.NewName = target
	e := sc.replies.entry()
	return s.entryReply(sc, e, s.fs.Symlink(&sc.req, h.Nodeid, name, target, e))
}

func (s *Server) mknodOp(sc *scratch, h *InHeader) Errno {
	in := argIn[MknodIn](sc)
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	sc.ev.Mode = in.Mode
	if errno := s.policy.mknod(in.Mode); errno != 0 {
		return errno
	}
	in.Mode = s.policy.mode(in.Mode)
	e := sc.replies.entry()
	return s.entryReply(sc, e, s.fs.Mknod(&sc.req, h.Nodeid, name, in, e))
}

func (s *Server) mkdirOp(sc *scratch, h *InHeader) Errno {
	in := argIn[MkdirIn](sc)
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	sc.ev.Mode = in.Mode
	in.Mode = s.policy.mode(in.Mode)
	e := sc.replies.entry()
	return s.entryReply(sc, e, s.fs.Mkdir(&sc.req, h.Nodeid, name, in, e))
}

func (s *Server) unlinkOp(sc *scratch, h *InHeader) Errno {
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	return s.fs.Unlink(&sc.req, h.Nodeid, name)
}

func (s *Server) rmdirOp(sc *scratch, h *InHeader) Errno {
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	return s.fs.Rmdir(&sc.req, h.Nodeid, name)
}

func (s *Server) rename(sc *scratch, h *InHeader, newdir uint64, flags uint32) Errno {
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	newName, err := sc.r.cstring(MaxNameLen)
	if err != nil {
		return nameErr(err)
	}
	sc.ev.NewName, sc.ev.Flags, sc.ev.Offset = newName, flags, newdir
	return s.fs.Rename(&sc.req, h.Nodeid, name, newdir, newName, flags)
}

func (s *Server) renameOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[RenameIn](&sc.r)
	return s.rename(sc, h, in.Newdir, 0)
}

func (s *Server) rename2Op(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[Rename2In](&sc.r)
	return s.rename(sc, h, in.Newdir, in.Flags)
}

func (s *Server) linkOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[LinkIn](&sc.r)
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	sc.ev.Offset = in.Oldnodeid
	e := sc.replies.entry()
	return s.entryReply(sc, e, s.fs.Link(&sc.req, in.Oldnodeid, h.Nodeid, name, e))
}

func (s *Server) openOp(sc *scratch, h *InHeader) Errno {
	in := argIn[OpenIn](sc)
	sc.ev.Flags = in.Flags
	out := sc.replies.openOut()
	if errno := s.fs.Open(&sc.req, h.Nodeid, in, out); errno != 0 {
		return errno
	}
	sc.ev.Fh = out.Fh
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) createOp(sc *scratch, h *InHeader) Errno {
	in := &sc.replies.createIn
	*in, _ = decodeArg[CreateIn](&sc.r)
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	sc.ev.Flags, sc.ev.Mode = in.Flags, in.Mode
	in.Mode = s.policy.mode(in.Mode)
	e, out := sc.replies.entry(), sc.replies.openOut()
	if errno := s.fs.Create(&sc.req, h.Nodeid, name, in, e, out); errno != 0 {
		return errno
	}
	sc.ev.NewNodeid, sc.ev.Fh = e.Nodeid, out.Fh
	sc.w.put(asBytes(e))
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) readOp(sc *scratch, h *InHeader) Errno {
	in := argIn[ReadIn](sc)
	sc.ev.Fh, sc.ev.Offset, sc.ev.Size, sc.ev.Flags = in.Fh, in.Offset, in.Size, in.Flags
	if in.Size > MaxWrite {
		return syscall.EINVAL
	}
	if sc.short != 0 {
		in.Size = min(in.Size, sc.short) // a rule shortens this READ (hook.go)
	}
	if sc.sp != nil && s.fdr != nil && in.Offset <= math.MaxInt64 {
		if done, errno := s.spliceRead(sc, h, in); done || errno != 0 {
			return errno
		}
	}
	dst := sc.w.window(int(in.Size))
	n, errno := s.fs.Read(&sc.req, h.Nodeid, in, dst)
	if errno != 0 {
		return errno
	}
	n = max(0, min(n, sc.w.room()))
	sc.w.n += n
	sc.ev.Bytes = n
	return 0
}

// spliceRead serves a READ through the transport's splicer when the
// filesystem has a descriptor for it; done false leaves it to Read.
func (s *Server) spliceRead(sc *scratch, h *InHeader, in *ReadIn) (done bool, errno Errno) {
	fd, release, errno := s.fdr.ReadFD(&sc.req, h.Nodeid, in)
	if errno != 0 || fd < 0 {
		return false, errno
	}
	n, err := sc.sp.SpliceRead(h.Unique, fd, int64(in.Offset), int(in.Size))
	release()
	if err != nil {
		return false, 0
	}
	sc.spliced = true
	sc.ev.Bytes = n
	return true, 0
}

func (s *Server) writeOp(sc *scratch, h *InHeader) Errno {
	in := argIn[WriteIn](sc)
	sc.ev.Fh, sc.ev.Offset, sc.ev.Size, sc.ev.Flags = in.Fh, in.Offset, in.Size, in.Flags
	if in.Size > MaxWrite {
		return syscall.EINVAL
	}
	var data [][]byte
	if sc.pw != nil {
		if sc.r.left != 0 || sc.pw.Len() != int(in.Size) || in.Offset > math.MaxInt64 {
			return syscall.EINVAL
		}
		if done, errno := s.spliceWrite(sc, h, in); done || errno != 0 {
			return errno
		}
		var err error
		if data, err = sc.pw.Read(int(in.Size)); err != nil {
			return syscall.EIO
		}
	} else {
		var got int
		if data, got = sc.r.rest(int(in.Size)); got != int(in.Size) {
			return syscall.EINVAL
		}
	}
	n, errno := s.fs.Write(&sc.req, h.Nodeid, in, data)
	if errno != 0 {
		return errno
	}
	sc.ev.Bytes = int(n)
	out := WriteOut{Size: n}
	sc.w.put(asBytes(&out))
	return 0
}

// spliceWrite moves a pending WRITE's data to the file's descriptor when
// the filesystem names one; done false leaves the WRITE to Write.
func (s *Server) spliceWrite(sc *scratch, h *InHeader, in *WriteIn) (done bool, errno Errno) {
	if s.fdw == nil {
		return false, 0
	}
	fd, release, errno := s.fdw.WriteFD(&sc.req, h.Nodeid, in)
	if errno != 0 || fd < 0 {
		return false, errno
	}
	n, err := sc.pw.SpliceTo(fd, int64(in.Offset), int(in.Size))
	release()
	if err != nil && n == 0 {
		var en syscall.Errno
		if !errors.As(err, &en) {
			en = syscall.EIO
		}
		return true, en
	}
	sc.ev.Bytes = n
	out := WriteOut{Size: uint32(n)}
	sc.w.put(asBytes(&out))
	return true, 0
}

func (s *Server) statfsOp(sc *scratch, h *InHeader) Errno {
	out := &sc.replies.statfs
	*out = StatfsOut{}
	if errno := s.fs.StatFs(&sc.req, h.Nodeid, out); errno != 0 {
		return errno
	}
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) releaseOp(sc *scratch, h *InHeader) Errno {
	in := argIn[ReleaseIn](sc)
	sc.ev.Fh, sc.ev.Flags = in.Fh, in.Flags
	return s.fs.Release(&sc.req, h.Nodeid, in)
}

func (s *Server) releasedirOp(sc *scratch, h *InHeader) Errno {
	in := argIn[ReleaseIn](sc)
	sc.ev.Fh = in.Fh
	return s.fs.ReleaseDir(&sc.req, h.Nodeid, in)
}

func (s *Server) fsyncOp(sc *scratch, h *InHeader) Errno {
	in := argIn[FsyncIn](sc)
	sc.ev.Fh, sc.ev.Flags = in.Fh, in.FsyncFlags
	return s.fs.Fsync(&sc.req, h.Nodeid, in)
}

func (s *Server) fsyncdirOp(sc *scratch, h *InHeader) Errno {
	in := argIn[FsyncIn](sc)
	sc.ev.Fh, sc.ev.Flags = in.Fh, in.FsyncFlags
	return s.fs.FsyncDir(&sc.req, h.Nodeid, in)
}

func (s *Server) flushOp(sc *scratch, h *InHeader) Errno {
	in := argIn[FlushIn](sc)
	sc.ev.Fh = in.Fh
	return s.fs.Flush(&sc.req, h.Nodeid, in)
}

func (s *Server) setxattrOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[SetXattrIn](&sc.r)
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	if in.Size > maxXattrSize {
		return syscall.E2BIG
	}
	value, ok := sc.r.next(int(in.Size))
	if !ok {
		return syscall.EINVAL
	}
	sc.ev.Size, sc.ev.Flags = in.Size, in.Flags
	if errno := s.policy.setxattr(name); errno != 0 {
		return errno
	}
	return s.fs.SetXattr(&sc.req, h.Nodeid, name, value, in.Flags)
}

// sizedReply answers GETXATTR and LISTXATTR: a size query gets the size,
// otherwise the value, which must fit the client's buffer.
func (s *Server) sizedReply(sc *scratch, size uint32, get func(dst []byte) (int, Errno)) Errno {
	sc.ev.Size = size
	if size == 0 {
		n, errno := get(nil)
		if errno != 0 {
			return errno
		}
		out := GetXattrOut{Size: uint32(n)}
		sc.w.put(asBytes(&out))
		return 0
	}
	buf := make([]byte, min(size, maxXattrSize))
	n, errno := get(buf)
	if errno != 0 {
		return errno
	}
	if n > len(buf) {
		return syscall.ERANGE
	}
	if !sc.w.put(buf[:n]) {
		return syscall.ERANGE
	}
	sc.ev.Bytes = n
	return 0
}

func (s *Server) getxattrOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[GetXattrIn](&sc.r)
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	return s.sizedReply(sc, in.Size, func(dst []byte) (int, Errno) {
		return s.fs.GetXattr(&sc.req, h.Nodeid, name, dst)
	})
}

func (s *Server) listxattrOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[GetXattrIn](&sc.r)
	return s.sizedReply(sc, in.Size, func(dst []byte) (int, Errno) {
		return s.fs.ListXattr(&sc.req, h.Nodeid, dst)
	})
}

func (s *Server) removexattrOp(sc *scratch, h *InHeader) Errno {
	name, errno := s.name(sc)
	if errno != 0 {
		return errno
	}
	return s.fs.RemoveXattr(&sc.req, h.Nodeid, name)
}

func (s *Server) opendirOp(sc *scratch, h *InHeader) Errno {
	in := argIn[OpenIn](sc)
	sc.ev.Flags = in.Flags
	out := sc.replies.openOut()
	if errno := s.fs.OpenDir(&sc.req, h.Nodeid, in, out); errno != 0 {
		return errno
	}
	sc.ev.Fh = out.Fh
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) readdir(sc *scratch, h *InHeader, plus bool) Errno {
	in := argIn[ReadIn](sc)
	sc.ev.Fh, sc.ev.Offset, sc.ev.Size = in.Fh, in.Offset, in.Size
	size := min(int(in.Size), MaxWrite, sc.w.room())
	list := NewDirList(sc.dir, size, plus)
	errno := s.fs.ReadDir(&sc.req, h.Nodeid, in, plus, list)
	sc.dir = list.buf[:0]
	if errno != 0 {
		return errno
	}
	sc.w.put(list.Bytes())
	sc.ev.Bytes = list.Len()
	return 0
}

func (s *Server) readdirOp(sc *scratch, h *InHeader) Errno     { return s.readdir(sc, h, false) }
func (s *Server) readdirplusOp(sc *scratch, h *InHeader) Errno { return s.readdir(sc, h, true) }

func (s *Server) accessOp(sc *scratch, h *InHeader) Errno {
	in, _ := decodeArg[AccessIn](&sc.r)
	sc.ev.Mode = in.Mask
	return s.fs.Access(&sc.req, h.Nodeid, in.Mask)
}

func (s *Server) ioctlOp(sc *scratch, h *InHeader) Errno {
	in := argIn[IoctlIn](sc)
	sc.ev.Fh, sc.ev.Flags, sc.ev.Offset, sc.ev.Size = in.Fh, in.Cmd, in.Arg, in.InSize
	if in.Flags&IoctlUnrestricted != 0 {
		return syscall.ENOSYS
	}
	if in.InSize > maxIoctlSize || in.OutSize > maxIoctlSize {
		return syscall.EINVAL
	}
	if in.Cmd == ExitCodeIoctl {
		// The init reports its exit code on the root it opened; on any
		// other inode the command reaches no filesystem.
		if h.Nodeid != RootID {
			return syscall.ENOTTY
		}
		// Only the init may report: any other guest process could end
		// the run with a code of its choosing. The pid, not the uid,
		// says who calls, so the check survives uid squashing.
		if h.Pid != InitPID {
			return syscall.EPERM
		}
	}
	inData, ok := sc.r.next(int(in.InSize))
	if !ok {
		return syscall.EINVAL
	}
	outData := make([]byte, in.OutSize)
	result, n, errno := s.fs.Ioctl(&sc.req, h.Nodeid, in, inData, outData)
	if errno != 0 {
		return errno
	}
	n = max(0, min(n, len(outData)))
	out := IoctlOut{Result: result}
	sc.w.put(asBytes(&out))
	if !sc.w.put(outData[:n]) {
		return syscall.ERANGE
	}
	sc.ev.Bytes = n
	return 0
}

func (s *Server) fallocateOp(sc *scratch, h *InHeader) Errno {
	in := argIn[FallocateIn](sc)
	sc.ev.Fh, sc.ev.Offset, sc.ev.Size, sc.ev.Mode = in.Fh, in.Offset, uint32(min(in.Length, 1<<32-1)), in.Mode
	return s.fs.Fallocate(&sc.req, h.Nodeid, in)
}

func (s *Server) lseekOp(sc *scratch, h *InHeader) Errno {
	in := argIn[LseekIn](sc)
	sc.ev.Fh, sc.ev.Offset, sc.ev.Flags = in.Fh, in.Offset, in.Whence
	out := &sc.replies.lseek
	*out = LseekOut{}
	if errno := s.fs.Lseek(&sc.req, h.Nodeid, in, out); errno != 0 {
		return errno
	}
	sc.w.put(asBytes(out))
	return 0
}

func (s *Server) copyFileRangeOp(sc *scratch, h *InHeader) Errno {
	in := argIn[CopyFileRangeIn](sc)
	sc.ev.Fh, sc.ev.Offset, sc.ev.Size = in.FhIn, in.OffIn, uint32(min(in.Len, 1<<32-1))
	n, errno := s.fs.CopyFileRange(&sc.req, h.Nodeid, in)
	if errno != 0 {
		return errno
	}
	sc.ev.Bytes = int(n)
	out := WriteOut{Size: n}
	sc.w.put(asBytes(&out))
	return 0
}

func (s *Server) syncfsOp(sc *scratch, h *InHeader) Errno {
	return s.fs.SyncFs(&sc.req, h.Nodeid)
}
