package fuse

import "time"

// Served describes one request after the server answered (or dropped) it.
// The server fills it and hands it to its Observer; the Observer must copy
// what it keeps, because the server reuses the value.
type Served struct {
	Unique uint64
	Opcode uint32
	Nodeid uint64
	Caller Caller

	// Arguments that matter, when the opcode has them.
	Name    string // LOOKUP, MKDIR, CREATE, UNLINK, RENAME source, xattr name...
	NewName string // RENAME target name, SYMLINK target, LINK new name
	Offset  uint64
	Size    uint32
	Flags   uint32
	Mode    uint32
	Fh      uint64

	// Result: Errno (0 on success) and the payload bytes moved (READ,
	// WRITE, READDIR...). Dropped requests have Dropped set and a reason.
	Errno   Errno
	Bytes   int
	Dropped string
	// NewNodeid is the nodeid an entry reply handed out.
	NewNodeid uint64

	// Synthetic is set when the request touched a synthetic inode
	// (/init.krun, /.krun_config.json); EOF when it was a READ there that
	// returned 0 bytes because the offset was at or past the end.
	Synthetic bool
	EOF       bool
	// Injected says what a rule injected into this request ("fault
	// ENOENT (rule 2)", "delay 2s", "short 10"); empty when it was served
	// as asked.
	Injected string

	Start   time.Time
	Latency time.Duration
}

// Observer receives every served request. It runs on the serving goroutine,
// so it must return quickly and never block (the trace ring drops instead).
type Observer interface {
	Observe(s *Served)
}

// InodeInfo is one row of a filesystem's inode table.
type InodeInfo struct {
	Nodeid    uint64
	Path      string
	Nlookup   uint64
	Synthetic bool
}

// InodeLister is implemented by filesystems that can list their inode table.
type InodeLister interface {
	Inodes() []InodeInfo
}
