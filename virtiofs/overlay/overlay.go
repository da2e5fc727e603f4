// Package overlay adds krunbench's synthetic files to a FUSE filesystem:
// the one-shot /init.krun entry with libkrun v1.19's semantics, an optional
// /.krun_config.json carrying the workload config, and the exit-code ioctl
// (0x7602) through which the guest init reports its workload's status.
//
// The overlay never embeds or copies an init: the payload is a byte slice
// owned by the caller (SetPayload), served in place; the caller keeps it
// unchanged while a guest may read it. krunbench's default init is a
// payload like any other, from initlib/defaultinit, which this package
// does not import. SetPayload applies initlib's payload rules: an empty
// payload is refused, and a script gets a lasting entry instead of the
// one-shot one.
//
// The one-shot entry is armed by SetPayload only: a guest that sends
// INIT again (a new FUSE session on the same server) does not get
// /init.krun back.
package overlay

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Names and nodeids of the synthetic files.
const (
	InitName     = "init.krun"
	ConfigName   = ".krun_config.json"
	InitNodeid   = 2
	ConfigNodeid = 1<<63 - 1
)

// FS wraps a filesystem with the synthetic files. Until SetPayload,
// /init.krun does not exist (LOOKUP gives ENOENT).
type FS struct {
	fuse.FileSystem

	mu       sync.Mutex
	payload  []byte
	config   []byte
	consumed bool   // the one-shot init.krun name was looked up
	lasting  bool   // the name stays visible after the first lookup
	initRefs uint64 // lookups of the synthetic init inode not yet forgotten
	cfgRefs  uint64

	exitSet  atomic.Bool
	exitCode atomic.Int32
	onExit   func(code int)
}

// New wraps inner.
func New(inner fuse.FileSystem) *FS { return &FS{FileSystem: inner} }

// SetPayload sets the bytes served as /init.krun and arms its entry:
// libkrun's one-shot one (the name is gone after its first lookup), or a
// lasting one for a script (initlib.Lasting), whose interpreter opens
// /init.krun again by name. The slice is caller-owned and is never copied:
// the caller must not modify it while a guest may read it. An empty slice
// is refused with initlib.ErrEmptyPayload and one over
// initlib.MaxPayloadSize with initlib.ErrHugePayload; the overlay is then
// unchanged. RemovePayload takes /init.krun away.
func (f *FS) SetPayload(p []byte) error {
	if err := initlib.CheckServable(p); err != nil {
		return fmt.Errorf("overlay.FS.SetPayload: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payload = p
	f.lasting = initlib.Lasting(p)
	f.consumed = false
	return nil
}

// RemovePayload takes /init.krun away: later lookups fall through to the
// wrapped filesystem. An inode already looked up answers ENOENT.
func (f *FS) RemovePayload() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payload, f.lasting = nil, false
}

// The policy check asks the overlay itself whether it serves a payload.
var _ initlib.InitServer = (*FS)(nil)

// Payload returns the slice being served (the caller's own, not a copy);
// nil when /init.krun does not exist.
func (f *FS) Payload() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.payload
}

// SetConfig sets the bytes served as /.krun_config.json; nil removes it.
// Like the payload, the slice is caller-owned and never copied.
func (f *FS) SetConfig(c []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.config = c
}

// OnExit registers a callback run when the guest reports an exit code.
func (f *FS) OnExit(fn func(code int)) { f.onExit = fn }

// ExitCode returns the code the guest reported through ioctl 0x7602.
func (f *FS) ExitCode() (int, bool) {
	return int(f.exitCode.Load()), f.exitSet.Load()
}

// ResetExitCode forgets a reported exit code, for a new run.
func (f *FS) ResetExitCode() { f.exitSet.Store(false) }

func synthetic(nodeid uint64) bool { return nodeid == InitNodeid || nodeid == ConfigNodeid }

// content returns a synthetic inode's bytes, its mode, and whether it is alive.
func (f *FS) content(nodeid uint64) ([]byte, uint32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch nodeid {
	case InitNodeid:
		return f.payload, syscall.S_IFREG | 0o755, f.initRefs > 0 && f.payload != nil
	case ConfigNodeid:
		return f.config, syscall.S_IFREG | 0o444, f.cfgRefs > 0 && f.config != nil
	}
	return nil, 0, false
}

func attrFor(nodeid uint64, data []byte, mode uint32) fuse.Attr {
	size := uint64(len(data))
	return fuse.Attr{
		Ino: nodeid, Size: size, Blocks: (size + 511) / 512, Mode: mode,
		Nlink: 1, Blksize: 4096,
	}
}

// Lookup serves the synthetic names in the root, then falls through.
func (f *FS) Lookup(r *fuse.Request, parent uint64, name string, out *fuse.EntryOut) fuse.Errno {
	if synthetic(parent) {
		r.Synthetic = true
		return syscall.ENOTDIR
	}
	if parent == fuse.RootID {
		f.mu.Lock()
		var nodeid uint64
		var data []byte
		var mode uint32
		switch {
		case name == InitName && f.payload != nil && (!f.consumed || f.lasting):
			f.consumed = true
			f.initRefs++
			nodeid, data, mode = InitNodeid, f.payload, syscall.S_IFREG|0o755
		case name == ConfigName && f.config != nil:
			f.cfgRefs++
			nodeid, data, mode = ConfigNodeid, f.config, syscall.S_IFREG|0o444
		}
		f.mu.Unlock()
		if nodeid != 0 {
			r.Synthetic = true
			*out = fuse.EntryOut{Nodeid: nodeid, Attr: attrFor(nodeid, data, mode)}
			return 0
		}
	}
	return f.FileSystem.Lookup(r, parent, name, out)
}

// Forget drops lookups of synthetic inodes, or passes through.
func (f *FS) Forget(nodeid, nlookup uint64) {
	if !synthetic(nodeid) {
		f.FileSystem.Forget(nodeid, nlookup)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	refs := &f.initRefs
	if nodeid == ConfigNodeid {
		refs = &f.cfgRefs
	}
	*refs -= min(*refs, nlookup)
}

// GetAttr answers for synthetic inodes.
func (f *FS) GetAttr(r *fuse.Request, nodeid uint64, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Errno {
	if !synthetic(nodeid) {
		return f.FileSystem.GetAttr(r, nodeid, in, out)
	}
	r.Synthetic = true
	data, mode, ok := f.content(nodeid)
	if !ok {
		return syscall.ENOENT
	}
	*out = fuse.AttrOut{Attr: attrFor(nodeid, data, mode)}
	return 0
}

// Open allows read-only opens of synthetic files.
func (f *FS) Open(r *fuse.Request, nodeid uint64, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Errno {
	if !synthetic(nodeid) {
		return f.FileSystem.Open(r, nodeid, in, out)
	}
	r.Synthetic = true
	if _, _, ok := f.content(nodeid); !ok {
		return syscall.ENOENT
	}
	if in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return syscall.EACCES
	}
	// Direct I/O sends every read to the server, so the trace shows them
	// all, down to the read at the end that returns 0 bytes (through the
	// page cache the kernel would answer that one itself).
	*out = fuse.OpenOut{OpenFlags: fuse.FopenDirectIO}
	return 0
}

// OpenDir refuses synthetic files, as libkrun does.
func (f *FS) OpenDir(r *fuse.Request, nodeid uint64, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Errno {
	if synthetic(nodeid) {
		r.Synthetic = true
		return syscall.EISDIR
	}
	return f.FileSystem.OpenDir(r, nodeid, in, out)
}

// Read serves synthetic bytes straight from the caller's slice; an offset
// at or past the end is EOF: 0 bytes, not an error.
func (f *FS) Read(r *fuse.Request, nodeid uint64, in *fuse.ReadIn, dst [][]byte) (int, fuse.Errno) {
	if !synthetic(nodeid) {
		return f.FileSystem.Read(r, nodeid, in, dst)
	}
	r.Synthetic = true
	data, _, ok := f.content(nodeid)
	if !ok {
		return 0, syscall.ENOENT
	}
	if in.Offset >= uint64(len(data)) {
		return 0, 0
	}
	src := data[in.Offset:]
	src = src[:min(uint64(len(src)), uint64(in.Size))]
	n := 0
	for _, d := range dst {
		if len(src) == 0 {
			break
		}
		k := copy(d, src)
		src = src[k:]
		n += k
	}
	return n, 0
}

// ReadFD lets a transport splice reads of host files (fuse.FDReader).
// Synthetic files have no descriptor: their READs go through Read.
func (f *FS) ReadFD(r *fuse.Request, nodeid uint64, in *fuse.ReadIn) (int, func(), fuse.Errno) {
	if synthetic(nodeid) {
		r.Synthetic = true
		return -1, nil, 0
	}
	if fr, ok := f.FileSystem.(fuse.FDReader); ok {
		return fr.ReadFD(r, nodeid, in)
	}
	return -1, nil, 0
}

// Splicing needs the wrapped filesystem's descriptors.
var (
	_ fuse.FDReader = (*FS)(nil)
	_ fuse.FDWriter = (*FS)(nil)
)

// WriteFD lets a transport splice writes to host files (fuse.FDWriter).
// Synthetic files have no descriptor: Write refuses their WRITEs.
func (f *FS) WriteFD(r *fuse.Request, nodeid uint64, in *fuse.WriteIn) (int, func(), fuse.Errno) {
	if synthetic(nodeid) {
		r.Synthetic = true
		return -1, nil, 0
	}
	if fw, ok := f.FileSystem.(fuse.FDWriter); ok {
		return fw.WriteFD(r, nodeid, in)
	}
	return -1, nil, 0
}

// Ioctl records the guest's exit code (0x7602 on any inode).
func (f *FS) Ioctl(r *fuse.Request, nodeid uint64, in *fuse.IoctlIn, inData, outData []byte) (int32, int, fuse.Errno) {
	if in.Cmd == fuse.ExitCodeIoctl {
		code := int32(in.Arg)
		f.exitCode.Store(code)
		f.exitSet.Store(true)
		if f.onExit != nil {
			f.onExit(int(code))
		}
		return 0, 0, 0
	}
	if synthetic(nodeid) {
		r.Synthetic = true
		return 0, 0, syscall.ENOTTY
	}
	return f.FileSystem.Ioctl(r, nodeid, in, inData, outData)
}

// Init starts a FUSE session. It does not re-arm the one-shot
// /init.krun: only the host does that (SetPayload), so a guest cannot get
// its init served twice by sending INIT again.
func (f *FS) Init(flags uint32) { f.FileSystem.Init(flags) }

// Destroy drops every lookup of the synthetic inodes and passes through.
func (f *FS) Destroy() {
	f.mu.Lock()
	f.initRefs, f.cfgRefs = 0, 0
	f.mu.Unlock()
	f.FileSystem.Destroy()
}

// HandlesKillprivV2 is the wrapped filesystem's answer
// (fuse.KillprivHandler): the synthetic files refuse writes and have no
// set-id bits, so only the host files' rules matter.
func (f *FS) HandlesKillprivV2() bool {
	kh, ok := f.FileSystem.(fuse.KillprivHandler)
	return ok && kh.HandlesKillprivV2()
}
