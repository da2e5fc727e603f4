package fuse

import (
	"path"
	"time"
)

// Hook intercepts requests between decoding and serving: the rules engine
// (breakpoints, fault injection) implements it. A server without a hook
// pays one nil comparison per request. Before and After run on the serving
// goroutine and may block: a breakpoint holds the request there, and the
// transport's other workers queue behind it.
type Hook interface {
	// Before sees a decoded request before it is served. A non-zero
	// Errno in the result answers the request with it instead of serving.
	Before(c *Call) Intervention
	// After sees the reply's errno once the request was served (or
	// answered by Before). A non-zero Errno replaces an error reply's
	// errno; it never turns a success into an error, since the reply's
	// data may already be on its way.
	After(c *Call, errno Errno) Intervention
	// Release lets every held request go and holds none until Resume: a
	// transport that is shutting down calls it (through Server.Release)
	// before it waits for its workers.
	Release()
	// Resume ends Release; Server.Reset calls it.
	Resume()
}

// Intervention is what a Hook does to a request.
type Intervention struct {
	// Errno, when non-zero, is the errno the request is answered with.
	Errno Errno
	// Short, when non-zero, serves a READ with at most Short bytes.
	Short uint32
	// Injected says what was injected ("fault ENOENT (rule 2)"); the
	// trace carries it on the request's event.
	Injected string
}

// Call is what a Hook sees of a request. Its fields are decoded from the
// request without consuming it; Path and FileSize are worked out only when
// asked. A Call is valid only during Before and After.
type Call struct {
	Unique uint64
	Opcode uint32
	Nodeid uint64
	Caller Caller
	// Name is the request's (first) name: LOOKUP's, CREATE's, RENAME's
	// source, LINK's new name; empty for opcodes without one.
	Name string
	// Offset and Size are READ's and WRITE's.
	Offset uint64
	Size   uint32
	// Arrived is when the server took the request.
	Arrived time.Time

	s    *Server
	path string
}

// Path names what the request is about: the parent's path joined with
// Name for opcodes that carry a name, the nodeid's path otherwise; ""
// when the filesystem cannot name the nodeid.
func (c *Call) Path() string {
	if c.path != "" {
		return c.path
	}
	pr, ok := c.s.fs.(PathResolver)
	if !ok {
		return ""
	}
	p := pr.PathOf(c.Nodeid)
	if p == "" && c.Nodeid == RootID {
		p = "/"
	}
	if p != "" && c.Name != "" {
		p = path.Join(p, c.Name)
	}
	c.path = p
	return p
}

// FileSize is the size of the request's nodeid, from a GETATTR on the
// filesystem; ok is false when it fails.
func (c *Call) FileSize() (size uint64, ok bool) {
	var out AttrOut
	r := Request{Header: InHeader{Opcode: OpGetattr, Nodeid: c.Nodeid, Unique: c.Unique}, Caller: c.Caller}
	if c.s.fs.GetAttr(&r, c.Nodeid, &GetAttrIn{}, &out) != 0 {
		return 0, false
	}
	return out.Attr.Size, true
}

// Release lets every request the hook holds go, and holds none until the
// next Reset: transports call it before they wait for their workers, so a
// breakpoint never blocks a shutdown.
func (s *Server) Release() {
	if s.hook != nil {
		s.hook.Release()
	}
}

// before runs the hook ahead of the handler: it fills sc.call from a copy
// of the request's reader and returns the intervention.
func (s *Server) before(sc *scratch, h *InHeader) Intervention {
	c := &sc.call
	*c = Call{Unique: h.Unique, Opcode: h.Opcode, Nodeid: h.Nodeid, Caller: sc.ev.Caller, Arrived: time.Now(), s: s}
	peekArgs(c, &sc.r, sc.peek[:0])
	return s.hook.Before(c)
}

// after runs the hook once the handler answered with errno; it returns the
// errno to reply with.
func (s *Server) after(sc *scratch, errno Errno) Errno {
	v := s.hook.After(&sc.call, errno)
	if v.Injected != "" {
		sc.ev.Injected = v.Injected
	}
	if v.Errno != 0 && errno != 0 {
		return v.Errno
	}
	return errno
}

// peekArgs decodes the name, offset and size a rule may match on from a
// copy of r, leaving r as it was.
func peekArgs(c *Call, r *reader, bufs [][]byte) {
	p := reader{bufs: append(bufs, r.bufs...), left: r.left}
	skip := 0
	switch c.Opcode {
	case OpLookup, OpUnlink, OpRmdir, OpSymlink, OpRemovexattr:
	case OpMkdir:
		skip = sizeOf[MkdirIn]()
	case OpMknod:
		skip = sizeOf[MknodIn]()
	case OpCreate:
		skip = sizeOf[CreateIn]()
	case OpRename:
		skip = sizeOf[RenameIn]()
	case OpRename2:
		skip = sizeOf[Rename2In]()
	case OpLink:
		skip = sizeOf[LinkIn]()
	case OpRead, OpReaddir, OpReaddirplus:
		if in, ok := decodeArg[ReadIn](&p); ok {
			c.Offset, c.Size = in.Offset, in.Size
		}
		return
	case OpWrite:
		if in, ok := decodeArg[WriteIn](&p); ok {
			c.Offset, c.Size = in.Offset, in.Size
		}
		return
	default:
		return
	}
	if _, ok := p.next(skip); !ok {
		return
	}
	if n, err := p.cstring(MaxNameLen); err == nil {
		c.Name = n
	}
}

// intercept serves a request through the hook: Before may answer it with
// an errno or shorten a READ, After may hold or re-answer the reply.
func (s *Server) intercept(sc *scratch, op *opInfo, h *InHeader) Errno {
	v := s.before(sc, h)
	sc.ev.Injected = v.Injected
	var errno Errno
	if v.Errno != 0 && !op.noReply {
		errno = v.Errno
	} else {
		sc.short = v.Short
		errno = op.handle(s, sc, h)
		sc.short = 0
	}
	return s.after(sc, errno)
}
