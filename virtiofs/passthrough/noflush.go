package passthrough

import (
	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// FLUSH answers close(2) in the client with a close of a duplicate of the
// host descriptor (Flush), which reports what the host filesystem's own
// flush reports. The filesystems below have no flush operation: close of
// a duplicate can only return 0 there, so the round trip tells the client
// nothing, and CREATE replies on them carry FOPEN_NOFLUSH: the client then
// skips FLUSH at close. POSIX and flock locks are the client kernel's (the
// server offers neither FUSE_POSIX_LOCKS nor FUSE_FLOCK_LOCKS), so no lock
// waits for a FLUSH to be released; under the writeback cache (serve
// --writeback) the kernel ignores the flag and flushes as before, since
// its FLUSH then writes dirty pages back. Elsewhere (NFS, CIFS, another
// FUSE filesystem: their close reports write-back errors) CREATE sets
// nothing. This took one of the 8 requests of a create+close+unlink
// (CREATE, FLUSH, RELEASE, UNLINK, a negative LOOKUP and two GETATTRs of
// the parent, which CREATE and UNLINK invalidate in a default_permissions
// client; go-fuse's loopback, without default_permissions, gets 6).
// Measured (issue 15, default settings, fusebench -modes tap,go-fuse
// -workloads create,create-warm -runs 4 -creates 5000, one run per binary,
// one after the other): ours/go-fuse 1.12x [1.10-1.30] fresh and 1.08x
// [1.07-1.34] warm server before, 1.39x [1.33-1.65] and 1.38x [1.35-1.52]
// after; server CPU per sample 0.675 and 0.68 s before, 0.585 and 0.655 s
// after. OPEN is left as it is (the write path's file).
//
// Not possible: the two GETATTRs. The kernel's fuse_dir_changed
// invalidates every attribute of the parent after CREATE and UNLINK, and
// neither reply has a field for the parent's new attributes.

// noFlushTypes are the statfs f_type values of local filesystems without
// a flush operation.
var noFlushTypes = map[int64]bool{
	unix.EXT4_SUPER_MAGIC: true, // also ext2 and ext3
	unix.XFS_SUPER_MAGIC:  true,
	unix.TMPFS_MAGIC:      true,
	// Not f2fs: its flush aborts an atomic write of the closing process.
}

// closeFlags is the open reply flags for the file open at fd: FopenNoflush
// when its filesystem has no flush (see noFlushTypes), else none.
func closeFlags(fd int) uint32 {
	var s unix.Statfs_t
	if unix.Fstatfs(fd, &s) != nil || !noFlushTypes[int64(s.Type)] {
		return 0
	}
	return fuse.FopenNoflush
}
