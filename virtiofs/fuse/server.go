// Package fuse speaks the FUSE wire protocol as the Linux kernel does
// (include/uapi/linux/fuse.h): it decodes a request held in any number of
// byte slices, dispatches it through one opcode table to a FileSystem, and
// encodes the reply into the caller's writable buffers. Transports
// (/dev/fuse, virtqueues, vhost-user) feed it; it knows nothing about them.
package fuse

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// MaxNameLen bounds names in requests (NAME_MAX).
const MaxNameLen = 255

// maxRequest bounds a request: a full WRITE plus its header and arguments.
const maxRequest = MaxWrite + 4096

// Offered is what the server offers at INIT: libkrun's set without
// READDIRPLUS_AUTO. With AUTO the kernel switches to plain READDIR after a
// directory's first chunk and then sends one LOOKUP per entry the walker
// stats, about forty times the round trips of READDIRPLUS on a find+stat.
// InitHandleKillprivV2 is offered only for a FileSystem that implements
// KillprivHandler and says it handles it (NewServer drops it otherwise).
const Offered = InitAsyncRead | InitParallelDirops | InitBigWrites | InitAutoInvalData |
	InitAsyncDio | InitHasIoctlDir | InitAtomicOTrunc | InitMaxPages | InitSubmounts |
	InitDoReaddirplus | InitHandleKillprivV2

// Options configure a Server.
type Options struct {
	// Observer sees every request (the trace tap); nil costs nothing.
	Observer Observer
	// Log receives reasons for dropped requests; nil discards them.
	Log *slog.Logger
	// Offer overrides the INIT flags offered; 0 means Offered. Its
	// READDIRPLUS bits are Readdirplus's, whatever Offer says.
	Offer uint32
	// Readdirplus is how READDIRPLUS is offered at INIT; the zero value
	// (ReaddirplusAlways) is Offered's.
	Readdirplus ReaddirplusMode
	// Policy limits what the guest may do (id translation, device nodes,
	// set-id bits, privileged xattrs); the zero value changes nothing.
	Policy GuestPolicy
	// Hook intercepts requests before and after serving (the rules
	// engine); nil costs one comparison per request.
	Hook Hook
}

// Server dispatches FUSE requests to a FileSystem. It is safe for
// concurrent use: transports call Serve from as many goroutines as they like.
type Server struct {
	fs     FileSystem
	fdr    FDReader // fs, when it can name a READ's host descriptor
	fdw    FDWriter // fs, when it can name a WRITE's host descriptor
	obs    Observer
	log    *slog.Logger
	offer  uint32
	policy GuestPolicy
	hook   Hook

	initialized atomic.Bool
	minor       atomic.Uint32
	flags       atomic.Uint32
	// maxWrite is the max_write (and max_pages, in pages) offered at
	// INIT; 0 means MaxWrite (LimitRequests).
	maxWrite atomic.Uint32

	// act tells a watcher when requests come and stop (activity.go).
	act *Activity

	pool sync.Pool
}

// scratch is per-call state, pooled so serving allocates little.
type scratch struct {
	r   reader
	w   writer
	req Request
	// hdr is the request's header as the handlers see it: a pointer to a
	// local passed through the opcode table's func values escaped, one
	// heap allocation (64 bytes) per request.
	hdr  InHeader
	ev   Served
	gath []byte
	dir  []byte
	// sp sends READ replies by splicing (ServeSplice); spliced is set
	// once it has sent this request's reply.
	sp      ReadSplicer
	spliced bool
	// pw holds the data of a WRITE that is not in the request buffers.
	pw PendingWrite
	// replies holds the arguments and replies of the most frequent
	// requests, which the FileSystem interface would otherwise move to
	// the heap once per request.
	replies replySpace
	// call, peek and short are the hook's (hook.go).
	call  Call
	peek  [8][]byte
	short uint32
}

// replySpace is the per-call room for the structs that LOOKUP, GETATTR
// and CREATE hand to the FileSystem by pointer. Passed through an
// interface, a local struct escapes: three to four heap allocations per
// request (go build -gcflags=-m); inside the pooled scratch they cost
// none. Each accessor zeroes its struct first.
type replySpace struct {
	entryOut  EntryOut
	attr      AttrOut
	open      OpenOut
	getattrIn GetAttrIn
	createIn  CreateIn
	statfs    StatfsOut
	lseek     LseekOut
	// arg holds the fixed argument of the other requests that hand it
	// on by pointer (argIn): READ, WRITE, OPEN, RELEASE, SETATTR...
	arg argRoom
}

// argRoom is room for any fixed request argument (the largest,
// SetAttrIn, is 88 bytes), 8-byte aligned.
type argRoom [16]uint64

// argIn decodes the request's fixed argument T (whose size the
// dispatcher checked) into the call's argument room and returns it; a
// pointer to a local passed through the FileSystem interface would move
// to the heap, one allocation per request. The wire structs hold only
// integers, so the room may hold any of them.
func argIn[T any](sc *scratch) *T {
	var p *T
	if sizeOf[T]() <= int(unsafe.Sizeof(sc.replies.arg)) {
		p = (*T)(unsafe.Pointer(&sc.replies.arg[0]))
	} else {
		p = new(T)
	}
	*p, _ = decodeArg[T](&sc.r)
	return p
}

func (r *replySpace) entry() *EntryOut {
	r.entryOut = EntryOut{}
	return &r.entryOut
}

func (r *replySpace) attrOut() *AttrOut {
	r.attr = AttrOut{}
	return &r.attr
}

func (r *replySpace) openOut() *OpenOut {
	r.open = OpenOut{}
	return &r.open
}

// NewServer returns a server for fs.
func NewServer(fs FileSystem, opts Options) *Server {
	s := &Server{fs: fs, obs: opts.Observer, log: opts.Log, offer: opts.Offer, policy: opts.Policy, hook: opts.Hook, act: newActivity()}
	if s.offer == 0 {
		s.offer = Offered
	}
	s.offer = opts.Readdirplus.apply(s.offer)
	if kh, ok := fs.(KillprivHandler); !ok || !kh.HandlesKillprivV2() {
		s.offer &^= InitHandleKillprivV2
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.fdr, _ = fs.(FDReader)
	s.fdw, _ = fs.(FDWriter)
	s.pool.New = func() any { return &scratch{gath: make([]byte, 0, 512)} }
	return s
}

// LimitRequests makes the next INIT offer max_write and max_pages of size
// bytes instead of MaxWrite, so the kernel never sends a WRITE or asks
// for a READ larger than that, and max_readahead of at least size. A transport calls it before the
// session starts, when it can only move requests up to some size without copying
// them (fusedev's pipes, splicein.go). size is rounded down to whole
// pages and kept between one page and MaxWrite.
func (s *Server) LimitRequests(size int) {
	size = min(max(size, 4096), MaxWrite) &^ 4095
	s.maxWrite.Store(uint32(size))
}

// Hooked reports whether a Hook intercepts the requests: one may hold a
// request for as long as a breakpoint lasts.
func (s *Server) Hooked() bool { return s.hook != nil }

// FileSystem returns the filesystem the server dispatches to.
func (s *Server) FileSystem() FileSystem { return s.fs }

// Activity says when requests come and stop, for one watcher.
func (s *Server) Activity() *Activity { return s.act }

// Initialized reports whether INIT has been negotiated.
func (s *Server) Initialized() bool { return s.initialized.Load() }

// Serve handles one request. in holds the request bytes (possibly split at
// any boundary); out receives the reply. It returns the reply length and
// whether a reply must be sent at all (FORGET and friends have none, and
// undecodable requests are dropped).
func (s *Server) Serve(in, out [][]byte) (n int, reply bool) {
	return s.ServeSplice(in, out, nil)
}

// ServeSplice is Serve for transports that can send a READ reply straight
// from a host descriptor (fusedev splices it into /dev/fuse). When the
// filesystem implements FDReader and hands out a descriptor for the READ,
// sp sends the whole reply and ServeSplice returns reply false; otherwise
// (sp nil, no descriptor, or sp declined) the reply is built in out as by
// Serve. Decoding, validation and the Observer are the same either way:
// the trace sees every READ with the bytes it moved.
func (s *Server) ServeSplice(in, out [][]byte, sp ReadSplicer) (n int, reply bool) {
	return s.ServePending(in, out, sp, nil)
}

// ServePending is ServeSplice for a request whose last pw.Len() bytes are
// not in `in` but held by the transport: the data of a WRITE, which the
// server then splices to the file's descriptor when the filesystem
// implements FDWriter and names one, and reads through pw otherwise. A
// request other than WRITE cannot be pending and is answered EINVAL;
// whatever the server leaves of pw unread, the transport discards.
func (s *Server) ServePending(in, out [][]byte, sp ReadSplicer, pw PendingWrite) (n int, reply bool) {
	s.act.mark()
	sc := s.pool.Get().(*scratch)
	sc.r.reset(in, sc.gath)
	sc.w.reset(out)
	sc.sp, sc.spliced, sc.pw = sp, false, pw
	ev := &sc.ev
	*ev = Served{}
	if s.obs != nil {
		ev.Start = time.Now()
	}
	n, reply = s.serve(sc)
	if s.obs != nil {
		ev.Latency = time.Since(ev.Start)
		s.obs.Observe(ev)
	}
	sc.sp, sc.pw = nil, nil
	s.pool.Put(sc)
	return n, reply
}

func (s *Server) drop(sc *scratch, reason error) (int, bool) {
	sc.ev.Dropped = reason.Error()
	s.log.Warn("dropping FUSE request", "reason", reason, "opcode", sc.ev.Opcode, "unique", sc.ev.Unique)
	return 0, false
}

func (s *Server) serve(sc *scratch) (int, bool) {
	r, w, ev := &sc.r, &sc.w, &sc.ev
	total, pending := r.left, 0
	if sc.pw != nil {
		pending = sc.pw.Len()
	}
	h, ok := decodeArg[InHeader](r)
	if !ok {
		return s.drop(sc, ErrShortRequest)
	}
	ev.Unique, ev.Opcode, ev.Nodeid = h.Unique, h.Opcode, h.Nodeid
	ev.Caller = Caller{Uid: h.Uid, Gid: h.Gid, Pid: h.Pid}
	op, known := lookupOp(h.Opcode)
	// FORGET, BATCH_FORGET and INTERRUPT have no reply even when they
	// fail: the driver gave them no room for one.
	noReply := known && op.noReply
	if w.total < OutHeaderSize && !noReply {
		return s.drop(sc, ErrShortReply)
	}
	fail := func(errno Errno, why error) (int, bool) {
		if noReply {
			if why == nil {
				why = errno
			}
			return s.drop(sc, why)
		}
		s.log.Debug("rejecting FUSE request", "reason", why, "opcode", h.Opcode, "unique", h.Unique)
		ev.Errno = errno
		return w.finish(h.Unique, errno), true
	}
	switch {
	case int(h.Len) < InHeaderSize:
		return s.drop(sc, ErrShortRequest)
	case int(h.Len) > maxRequest:
		return fail(syscall.EINVAL, ErrTooLarge)
	case int(h.Len) != total+pending && (pending > 0 || int(h.Len) > total):
		return fail(syscall.EINVAL, ErrLyingLength)
	case pending > 0 && h.Opcode != OpWrite:
		return fail(syscall.EINVAL, ErrLyingLength)
	}
	r.limit(int(h.Len) - InHeaderSize)

	if !known {
		return fail(syscall.ENOSYS, nil)
	}
	if h.Opcode != OpInit && !s.initialized.Load() {
		return fail(syscall.EIO, nil)
	}
	if sc.r.left < op.inSize {
		return fail(syscall.EINVAL, ErrShortRequest)
	}
	sc.req = Request{Header: h, Caller: s.policy.caller(ev.Caller)}
	sc.hdr = h
	var errno Errno
	if s.hook != nil {
		errno = s.intercept(sc, op, &sc.hdr)
	} else {
		errno = op.handle(s, sc, &sc.hdr)
	}
	ev.Errno = errno
	ev.Synthetic = ev.Synthetic || sc.req.Synthetic
	if h.Opcode == OpRead && ev.Synthetic && errno == 0 && ev.Bytes == 0 {
		ev.EOF = true
	}
	if op.noReply || sc.spliced {
		return 0, false
	}
	return w.finish(h.Unique, errno), true
}

// initOp negotiates the protocol version and flags.
func (s *Server) initOp(sc *scratch, h *InHeader) Errno {
	in, ok := decodeArg[InitIn](&sc.r)
	if !ok {
		return syscall.EINVAL
	}
	sc.ev.Flags = in.Flags
	out := InitOut{Major: KernelVersion, Minor: KernelMinor}
	switch {
	case in.Major > KernelVersion:
		// The kernel retries with our major when we answer with it alone.
		sc.w.put(asBytes(&out))
		return 0
	case in.Major < KernelVersion || in.Minor < MinKernelMinor:
		s.log.Warn("FUSE client too old", "major", in.Major, "minor", in.Minor)
		return syscall.EPROTO
	}
	out.Minor = min(in.Minor, KernelMinor)
	flags := in.Flags & s.offer
	out.Flags = flags
	out.MaxReadahead = in.MaxReadahead
	if limit := s.maxWrite.Load(); limit != 0 {
		// The kernel keeps the lesser of this and its mount's readahead
		// window; a transport that limits requests may have raised that
		// window to the same size beforehand (fusedev's readahead.go).
		out.MaxReadahead = max(in.MaxReadahead, limit)
	}
	out.MaxBackground = 256
	out.CongestionThreshold = 192
	out.MaxWrite = MaxWrite
	if limit := s.maxWrite.Load(); limit != 0 {
		out.MaxWrite = limit
	}
	out.TimeGran = 1
	if flags&InitMaxPages != 0 {
		out.MaxPages = uint16(out.MaxWrite / 4096)
	}
	if !sc.w.put(asBytes(&out)) {
		return syscall.ERANGE
	}
	s.minor.Store(out.Minor)
	s.flags.Store(flags)
	s.fs.Init(flags)
	s.initialized.Store(true)
	return 0
}

// Reset forgets the negotiated session, as after DESTROY or a device reset.
func (s *Server) Reset() {
	if s.initialized.Swap(false) {
		s.fs.Destroy()
	}
	if s.hook != nil {
		s.hook.Resume()
	}
}
