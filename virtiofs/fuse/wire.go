package fuse

import "unsafe"

// Wire structs mirror include/uapi/linux/fuse.h field for field. They hold
// no pointers and are explicitly padded, so their Go layout equals the C
// layout on the little-endian 64-bit hosts krunbench supports (amd64, arm64).

// Protocol version spoken by this server.
const (
	KernelVersion    = 7
	KernelMinor      = 31
	MinKernelMinor   = 27
	MaxWrite         = 1 << 20
	MaxPages         = MaxWrite / 4096
	DefaultReadahead = 128 << 10
)

// InHeader precedes every request.
type InHeader struct {
	Len         uint32
	Opcode      uint32
	Unique      uint64
	Nodeid      uint64
	Uid         uint32
	Gid         uint32
	Pid         uint32
	TotalExtlen uint16
	Padding     uint16
}

// OutHeader precedes every reply.
type OutHeader struct {
	Len    uint32
	Error  int32
	Unique uint64
}

// Attr is struct fuse_attr.
type Attr struct {
	Ino       uint64
	Size      uint64
	Blocks    uint64
	Atime     uint64
	Mtime     uint64
	Ctime     uint64
	Atimensec uint32
	Mtimensec uint32
	Ctimensec uint32
	Mode      uint32
	Nlink     uint32
	Uid       uint32
	Gid       uint32
	Rdev      uint32
	Blksize   uint32
	Flags     uint32
}

// EntryOut answers LOOKUP, MKNOD, MKDIR, SYMLINK, LINK and CREATE.
type EntryOut struct {
	Nodeid         uint64
	Generation     uint64
	EntryValid     uint64
	AttrValid      uint64
	EntryValidNsec uint32
	AttrValidNsec  uint32
	Attr           Attr
}

// ForgetIn is the body of FORGET.
type ForgetIn struct{ Nlookup uint64 }

// ForgetOne is one element of BATCH_FORGET.
type ForgetOne struct {
	Nodeid  uint64
	Nlookup uint64
}

// BatchForgetIn heads BATCH_FORGET.
type BatchForgetIn struct {
	Count uint32
	Dummy uint32
}

// GetAttrIn is the body of GETATTR.
type GetAttrIn struct {
	GetattrFlags uint32
	Dummy        uint32
	Fh           uint64
}

// AttrOut answers GETATTR and SETATTR.
type AttrOut struct {
	AttrValid     uint64
	AttrValidNsec uint32
	Dummy         uint32
	Attr          Attr
}

// MknodIn is the body of MKNOD.
type MknodIn struct {
	Mode    uint32
	Rdev    uint32
	Umask   uint32
	Padding uint32
}

// MkdirIn is the body of MKDIR.
type MkdirIn struct {
	Mode  uint32
	Umask uint32
}

// RenameIn is the body of RENAME.
type RenameIn struct{ Newdir uint64 }

// Rename2In is the body of RENAME2.
type Rename2In struct {
	Newdir  uint64
	Flags   uint32
	Padding uint32
}

// LinkIn is the body of LINK.
type LinkIn struct{ Oldnodeid uint64 }

// SetAttrIn is the body of SETATTR.
type SetAttrIn struct {
	Valid     uint32
	Padding   uint32
	Fh        uint64
	Size      uint64
	LockOwner uint64
	Atime     uint64
	Mtime     uint64
	Ctime     uint64
	Atimensec uint32
	Mtimensec uint32
	Ctimensec uint32
	Mode      uint32
	Unused4   uint32
	Uid       uint32
	Gid       uint32
	Unused5   uint32
}

// OpenIn is the body of OPEN and OPENDIR.
type OpenIn struct {
	Flags     uint32
	OpenFlags uint32
}

// CreateIn is the body of CREATE.
type CreateIn struct {
	Flags     uint32
	Mode      uint32
	Umask     uint32
	OpenFlags uint32
}

// OpenOut answers OPEN, OPENDIR and (after an EntryOut) CREATE.
type OpenOut struct {
	Fh        uint64
	OpenFlags uint32
	Padding   uint32
}

// ReleaseIn is the body of RELEASE and RELEASEDIR.
type ReleaseIn struct {
	Fh           uint64
	Flags        uint32
	ReleaseFlags uint32
	LockOwner    uint64
}

// FlushIn is the body of FLUSH.
type FlushIn struct {
	Fh        uint64
	Unused    uint32
	Padding   uint32
	LockOwner uint64
}

// ReadIn is the body of READ, READDIR and READDIRPLUS.
type ReadIn struct {
	Fh        uint64
	Offset    uint64
	Size      uint32
	ReadFlags uint32
	LockOwner uint64
	Flags     uint32
	Padding   uint32
}

// WriteIn heads WRITE; the data follows.
type WriteIn struct {
	Fh         uint64
	Offset     uint64
	Size       uint32
	WriteFlags uint32
	LockOwner  uint64
	Flags      uint32
	Padding    uint32
}

// WriteOut answers WRITE and COPY_FILE_RANGE.
type WriteOut struct {
	Size    uint32
	Padding uint32
}

// StatfsOut answers STATFS (struct fuse_kstatfs).
type StatfsOut struct {
	Blocks  uint64
	Bfree   uint64
	Bavail  uint64
	Files   uint64
	Ffree   uint64
	Bsize   uint32
	Namelen uint32
	Frsize  uint32
	Padding uint32
	Spare   [6]uint32
}

// FsyncIn is the body of FSYNC and FSYNCDIR.
type FsyncIn struct {
	Fh         uint64
	FsyncFlags uint32
	Padding    uint32
}

// SetXattrIn heads SETXATTR (without FUSE_SETXATTR_EXT).
type SetXattrIn struct {
	Size  uint32
	Flags uint32
}

// GetXattrIn is the body of GETXATTR and LISTXATTR.
type GetXattrIn struct {
	Size    uint32
	Padding uint32
}

// GetXattrOut answers a size query (Size == 0) of GETXATTR and LISTXATTR.
type GetXattrOut struct {
	Size    uint32
	Padding uint32
}

// AccessIn is the body of ACCESS.
type AccessIn struct {
	Mask    uint32
	Padding uint32
}

// InitIn is the 7.27..7.35 body of INIT; newer kernels append flags2 and
// reserved words, which the decoder reads when present.
type InitIn struct {
	Major        uint32
	Minor        uint32
	MaxReadahead uint32
	Flags        uint32
}

// InitOut answers INIT (64 bytes since 7.23).
type InitOut struct {
	Major               uint32
	Minor               uint32
	MaxReadahead        uint32
	Flags               uint32
	MaxBackground       uint16
	CongestionThreshold uint16
	MaxWrite            uint32
	TimeGran            uint32
	MaxPages            uint16
	MapAlignment        uint16
	Flags2              uint32
	Unused              [7]uint32
}

// InterruptIn is the body of INTERRUPT.
type InterruptIn struct{ Unique uint64 }

// IoctlIn heads IOCTL; in_size bytes of input follow.
type IoctlIn struct {
	Fh      uint64
	Flags   uint32
	Cmd     uint32
	Arg     uint64
	InSize  uint32
	OutSize uint32
}

// IoctlOut answers IOCTL; output data follows.
type IoctlOut struct {
	Result  int32
	Flags   uint32
	InIovs  uint32
	OutIovs uint32
}

// FallocateIn is the body of FALLOCATE.
type FallocateIn struct {
	Fh      uint64
	Offset  uint64
	Length  uint64
	Mode    uint32
	Padding uint32
}

// LseekIn is the body of LSEEK.
type LseekIn struct {
	Fh      uint64
	Offset  uint64
	Whence  uint32
	Padding uint32
}

// LseekOut answers LSEEK.
type LseekOut struct{ Offset uint64 }

// CopyFileRangeIn is the body of COPY_FILE_RANGE.
type CopyFileRangeIn struct {
	FhIn      uint64
	OffIn     uint64
	NodeidOut uint64
	FhOut     uint64
	OffOut    uint64
	Len       uint64
	Flags     uint64
}

// SyncFsIn is the body of SYNCFS.
type SyncFsIn struct{ Padding uint64 }

// direntHeader is struct fuse_dirent without its name.
type direntHeader struct {
	Ino     uint64
	Off     uint64
	Namelen uint32
	Type    uint32
}

// Sizes of the fixed parts, checked against fuse.h in wire_test.go.
const (
	InHeaderSize  = int(unsafe.Sizeof(InHeader{}))
	OutHeaderSize = int(unsafe.Sizeof(OutHeader{}))
	EntryOutSize  = int(unsafe.Sizeof(EntryOut{}))
	direntSize    = int(unsafe.Sizeof(direntHeader{}))
)

// INIT flags (fuse_init_in.flags / fuse_init_out.flags).
const (
	InitAsyncRead         = 1 << 0
	InitPosixLocks        = 1 << 1
	InitAtomicOTrunc      = 1 << 3
	InitExportSupport     = 1 << 4
	InitBigWrites         = 1 << 5
	InitDontMask          = 1 << 6
	InitFlockLocks        = 1 << 10
	InitHasIoctlDir       = 1 << 11
	InitAutoInvalData     = 1 << 12
	InitDoReaddirplus     = 1 << 13
	InitReaddirplusAuto   = 1 << 14
	InitAsyncDio          = 1 << 15
	InitWritebackCache    = 1 << 16
	InitParallelDirops    = 1 << 18
	InitHandleKillpriv    = 1 << 19
	InitPosixACL          = 1 << 20
	InitMaxPages          = 1 << 22
	InitCacheSymlinks     = 1 << 23
	InitNoOpendirSupport  = 1 << 24
	InitExplicitInvalData = 1 << 25
	InitMapAlignment      = 1 << 26
	InitSubmounts         = 1 << 27
	// InitHandleKillprivV2 (7.33) makes the server clear SUID/SGID (and the
	// host clear security.capability) on WRITE, truncating SETATTR, chown
	// and O_TRUNC opens, as the request flags below ask; the client kernel
	// then sets SB_NOSEC and stops asking GETXATTR security.capability
	// before every write.
	InitHandleKillprivV2 = 1 << 28
	InitInitExt          = 1 << 30
)

// SETATTR valid bits.
const (
	FattrMode      = 1 << 0
	FattrUID       = 1 << 1
	FattrGID       = 1 << 2
	FattrSize      = 1 << 3
	FattrAtime     = 1 << 4
	FattrMtime     = 1 << 5
	FattrFh        = 1 << 6
	FattrAtimeNow  = 1 << 7
	FattrMtimeNow  = 1 << 8
	FattrLockowner = 1 << 9
	FattrCtime     = 1 << 10
	// FattrKillSuid is FATTR_KILL_SUIDGID: with InitHandleKillprivV2 the
	// SETATTR (a chown of a non-directory, or a truncation by a caller
	// without CAP_FSETID) must clear SUID and SGID-with-group-execute.
	FattrKillSuid = 1 << 11
)

// WriteKillSuidgid is FUSE_WRITE_KILL_SUIDGID in fuse_write_in.write_flags
// (FUSE_WRITE_KILL_PRIV before 7.33): the writer lacks CAP_FSETID, so the
// write must clear SUID and SGID-with-group-execute as a local write by it
// would. The kernel sets it on direct I/O writes whatever was negotiated.
const WriteKillSuidgid = 1 << 2

// OpenKillSuidgid is FUSE_OPEN_KILL_SUIDGID in fuse_open_in.open_flags and
// fuse_create_in.open_flags: an O_TRUNC open by a caller without
// CAP_FSETID, sent only with InitHandleKillprivV2.
const OpenKillSuidgid = 1 << 0

// Open reply flags, GETATTR flags, IOCTL flags.
const (
	FopenDirectIO   = 1 << 0
	FopenKeepCache  = 1 << 1
	FopenNonSeekabl = 1 << 2
	FopenCacheDir   = 1 << 3
	// FopenNoflush: the client sends no FLUSH at close (ignored by the
	// kernel under the writeback cache, where FLUSH writes data back).
	FopenNoflush = 1 << 5

	GetattrFh = 1 << 0

	IoctlCompat       = 1 << 0
	IoctlUnrestricted = 1 << 1
	IoctlRetry        = 1 << 2
	IoctlDir          = 1 << 4
)

// ExitCodeIoctl is libkrun's _IO('v', 2): the guest init reports its
// workload's exit code through it on the root virtio-fs.
const ExitCodeIoctl = 0x7602

// InitPID is the only caller whose ExitCodeIoctl is accepted. A request's
// header carries the calling thread's id in the pid namespace of whoever
// mounted the filesystem: for virtio-fs the guest's first namespace, in
// which 1 is the init's main thread and nothing else. So an init must
// report from its main thread (krun-init and the test init lock it); over
// /dev/fuse it is the host's pid 1, so no host process reports.
const InitPID = 1

func sizeOf[T any]() int {
	var v T
	return int(unsafe.Sizeof(v))
}

// asBytes views a wire struct as its bytes without copying.
func asBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// fromBytes copies a wire struct out of b, which must be long enough.
func fromBytes[T any](b []byte) T {
	return *(*T)(unsafe.Pointer(&b[0]))
}
