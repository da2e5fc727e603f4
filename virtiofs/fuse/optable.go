package fuse

import "fmt"

// Opcodes (enum fuse_opcode).
const (
	OpLookup        = 1
	OpForget        = 2
	OpGetattr       = 3
	OpSetattr       = 4
	OpReadlink      = 5
	OpSymlink       = 6
	OpMknod         = 8
	OpMkdir         = 9
	OpUnlink        = 10
	OpRmdir         = 11
	OpRename        = 12
	OpLink          = 13
	OpOpen          = 14
	OpRead          = 15
	OpWrite         = 16
	OpStatfs        = 17
	OpRelease       = 18
	OpFsync         = 20
	OpSetxattr      = 21
	OpGetxattr      = 22
	OpListxattr     = 23
	OpRemovexattr   = 24
	OpFlush         = 25
	OpInit          = 26
	OpOpendir       = 27
	OpReaddir       = 28
	OpReleasedir    = 29
	OpFsyncdir      = 30
	OpGetlk         = 31
	OpSetlk         = 32
	OpSetlkw        = 33
	OpAccess        = 34
	OpCreate        = 35
	OpInterrupt     = 36
	OpBmap          = 37
	OpDestroy       = 38
	OpIoctl         = 39
	OpPoll          = 40
	OpNotifyReply   = 41
	OpBatchForget   = 42
	OpFallocate     = 43
	OpReaddirplus   = 44
	OpRename2       = 45
	OpLseek         = 46
	OpCopyFileRange = 47
	OpSetupmapping  = 48
	OpRemovemapping = 49
	OpSyncfs        = 50
	OpTmpfile       = 51
	OpStatx         = 52
	opMax           = 52
)

// opInfo is one row of the dispatch table: the opcode's name, the C struct
// that heads its arguments (and its size, checked before the handler runs),
// whether the kernel expects a reply, and the handler.
type opInfo struct {
	name    string
	args    string
	inSize  int
	noReply bool
	handle  func(s *Server, sc *scratch, h *InHeader) Errno
}

// opTable maps every opcode the server implements to its row. Opcodes
// without a row (locks, BMAP, POLL, DAX mappings, TMPFILE, STATX) get ENOSYS.
var opTable [opMax + 1]*opInfo

func row(op uint32, name, args string, inSize int, handle func(*Server, *scratch, *InHeader) Errno) {
	opTable[op] = &opInfo{name: name, args: args, inSize: inSize, handle: handle}
}

func init() {
	row(OpInit, "INIT", "fuse_init_in", sizeOf[InitIn](), (*Server).initOp)
	row(OpDestroy, "DESTROY", "", 0, (*Server).destroyOp)
	row(OpLookup, "LOOKUP", "name", 1, (*Server).lookupOp)
	row(OpForget, "FORGET", "fuse_forget_in", sizeOf[ForgetIn](), (*Server).forgetOp)
	row(OpBatchForget, "BATCH_FORGET", "fuse_batch_forget_in + fuse_forget_one[]", sizeOf[BatchForgetIn](), (*Server).batchForgetOp)
	row(OpInterrupt, "INTERRUPT", "fuse_interrupt_in", sizeOf[InterruptIn](), (*Server).interruptOp)
	row(OpGetattr, "GETATTR", "fuse_getattr_in", sizeOf[GetAttrIn](), (*Server).getattrOp)
	row(OpSetattr, "SETATTR", "fuse_setattr_in", sizeOf[SetAttrIn](), (*Server).setattrOp)
	row(OpReadlink, "READLINK", "", 0, (*Server).readlinkOp)
	row(OpSymlink, "SYMLINK", "name + target", 2, (*Server).symlinkOp)
	row(OpMknod, "MKNOD", "fuse_mknod_in + name", sizeOf[MknodIn](), (*Server).mknodOp)
	row(OpMkdir, "MKDIR", "fuse_mkdir_in + name", sizeOf[MkdirIn](), (*Server).mkdirOp)
	row(OpUnlink, "UNLINK", "name", 1, (*Server).unlinkOp)
	row(OpRmdir, "RMDIR", "name", 1, (*Server).rmdirOp)
	row(OpRename, "RENAME", "fuse_rename_in + names", sizeOf[RenameIn](), (*Server).renameOp)
	row(OpRename2, "RENAME2", "fuse_rename2_in + names", sizeOf[Rename2In](), (*Server).rename2Op)
	row(OpLink, "LINK", "fuse_link_in + name", sizeOf[LinkIn](), (*Server).linkOp)
	row(OpOpen, "OPEN", "fuse_open_in", sizeOf[OpenIn](), (*Server).openOp)
	row(OpCreate, "CREATE", "fuse_create_in + name", sizeOf[CreateIn](), (*Server).createOp)
	row(OpRead, "READ", "fuse_read_in", sizeOf[ReadIn](), (*Server).readOp)
	row(OpWrite, "WRITE", "fuse_write_in + data", sizeOf[WriteIn](), (*Server).writeOp)
	row(OpStatfs, "STATFS", "", 0, (*Server).statfsOp)
	row(OpRelease, "RELEASE", "fuse_release_in", sizeOf[ReleaseIn](), (*Server).releaseOp)
	row(OpFsync, "FSYNC", "fuse_fsync_in", sizeOf[FsyncIn](), (*Server).fsyncOp)
	row(OpSetxattr, "SETXATTR", "fuse_setxattr_in + name + value", sizeOf[SetXattrIn](), (*Server).setxattrOp)
	row(OpGetxattr, "GETXATTR", "fuse_getxattr_in + name", sizeOf[GetXattrIn](), (*Server).getxattrOp)
	row(OpListxattr, "LISTXATTR", "fuse_getxattr_in", sizeOf[GetXattrIn](), (*Server).listxattrOp)
	row(OpRemovexattr, "REMOVEXATTR", "name", 1, (*Server).removexattrOp)
	row(OpFlush, "FLUSH", "fuse_flush_in", sizeOf[FlushIn](), (*Server).flushOp)
	row(OpOpendir, "OPENDIR", "fuse_open_in", sizeOf[OpenIn](), (*Server).opendirOp)
	row(OpReaddir, "READDIR", "fuse_read_in", sizeOf[ReadIn](), (*Server).readdirOp)
	row(OpReaddirplus, "READDIRPLUS", "fuse_read_in", sizeOf[ReadIn](), (*Server).readdirplusOp)
	row(OpReleasedir, "RELEASEDIR", "fuse_release_in", sizeOf[ReleaseIn](), (*Server).releasedirOp)
	row(OpFsyncdir, "FSYNCDIR", "fuse_fsync_in", sizeOf[FsyncIn](), (*Server).fsyncdirOp)
	row(OpAccess, "ACCESS", "fuse_access_in", sizeOf[AccessIn](), (*Server).accessOp)
	row(OpIoctl, "IOCTL", "fuse_ioctl_in + data", sizeOf[IoctlIn](), (*Server).ioctlOp)
	row(OpFallocate, "FALLOCATE", "fuse_fallocate_in", sizeOf[FallocateIn](), (*Server).fallocateOp)
	row(OpLseek, "LSEEK", "fuse_lseek_in", sizeOf[LseekIn](), (*Server).lseekOp)
	row(OpCopyFileRange, "COPY_FILE_RANGE", "fuse_copy_file_range_in", sizeOf[CopyFileRangeIn](), (*Server).copyFileRangeOp)
	row(OpSyncfs, "SYNCFS", "fuse_syncfs_in", sizeOf[SyncFsIn](), (*Server).syncfsOp)
	for _, op := range []uint32{OpForget, OpBatchForget, OpInterrupt} {
		opTable[op].noReply = true
	}
}

func lookupOp(op uint32) (*opInfo, bool) {
	if op > opMax || opTable[op] == nil {
		return nil, false
	}
	return opTable[op], true
}

// names of opcodes without a handler, so traces can still name them.
var unimplementedNames = map[uint32]string{
	OpGetlk: "GETLK", OpSetlk: "SETLK", OpSetlkw: "SETLKW", OpBmap: "BMAP",
	OpPoll: "POLL", OpNotifyReply: "NOTIFY_REPLY", OpSetupmapping: "SETUPMAPPING",
	OpRemovemapping: "REMOVEMAPPING", OpTmpfile: "TMPFILE", OpStatx: "STATX",
}

// OpName returns the opcode's name as fuse.h spells it without FUSE_.
func OpName(op uint32) string {
	if o, ok := lookupOp(op); ok {
		return o.name
	}
	if n, ok := unimplementedNames[op]; ok {
		return n
	}
	return fmt.Sprintf("OP_%d", op)
}

// OpArgs returns the C argument layout of an implemented opcode.
func OpArgs(op uint32) string {
	if o, ok := lookupOp(op); ok {
		return o.args
	}
	return ""
}

// Implemented reports whether the server has a handler for op.
func Implemented(op uint32) bool {
	_, ok := lookupOp(op)
	return ok
}
