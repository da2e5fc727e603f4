package rules

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Held is a request waiting at the gate (or held after its reply), copied
// out of the server so it can be shown while the request waits.
type Held struct {
	Unique uint64
	Op     uint32
	OpName string
	Nodeid uint64
	Path   string
	Name   string
	Offset uint64
	Size   uint32
	// Since is when the request reached the server: the guest has been
	// waiting since then.
	Since time.Time
	// Rule is the breakpoint that stopped here, on the request that
	// tripped it; empty on requests queued behind it.
	Rule string
	// Errno is the reply's, for a request held after its reply.
	Errno syscall.Errno
}

// State is the gate as seen from outside.
type State struct {
	// Holding is set from a breakpoint until Continue.
	Holding bool
	// Reason is the breakpoint that started the hold.
	Reason string
	// Reply is a request served but held before the guest sees its reply.
	Reply *Held
	// Queued are the requests waiting to be served, oldest first: the
	// first is the held request a step serves next.
	Queued []Held
	// Stepped counts the requests served one by one since the hold began.
	Stepped uint64
}

// waiter is one request at the gate.
type waiter struct {
	info    Held
	call    *fuse.Call
	release chan struct{}
	// reply is set once the request is held after its reply; showReply
	// asks for that hold when the request is stepped.
	reply     chan struct{}
	showReply bool
}

// Gate holds requests while a breakpoint is in effect and lets them
// through one at a time. Requests that reach it while it holds queue in
// arrival order; a step serves the oldest, and the next one is only
// released once that one has been answered, so stepped requests are served
// strictly one by one. Nothing is ever dropped: Continue and Release let
// every queued request go.
type Gate struct {
	holding atomic.Bool

	mu       sync.Mutex
	released bool
	reason   string
	queue    []*waiter
	credits  []bool // pending steps; true asks to hold after the reply
	inflight *waiter
	replyAt  *waiter
	stepped  uint64
	notify   chan struct{}
}

func newGate() *Gate {
	return &Gate{notify: make(chan struct{})}
}

// Changes returns a channel closed at the gate's next change; any number
// of watchers (the TUI, control connections) may wait on it.
func (g *Gate) Changes() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.notify
}

func (g *Gate) changed() {
	g.mu.Lock()
	close(g.notify)
	g.notify = make(chan struct{})
	g.mu.Unlock()
}

// State returns a copy of the gate's state.
func (g *Gate) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := State{Holding: g.holding.Load(), Reason: g.reason, Stepped: g.stepped}
	if g.replyAt != nil {
		h := g.replyAt.info
		st.Reply = &h
	}
	for _, w := range g.queue {
		st.Queued = append(st.Queued, w.info)
	}
	return st
}

// enter runs on the serving goroutine before the request is served. brk
// is the breakpoint the request trips, if any. It returns once the request
// may be served.
func (g *Gate) enter(c *fuse.Call, brk string) {
	if brk == "" && !g.holding.Load() {
		return
	}
	g.mu.Lock()
	if g.released || (brk == "" && !g.holding.Load()) {
		g.mu.Unlock()
		return
	}
	if !g.holding.Load() {
		g.holding.Store(true)
		g.reason, g.stepped = brk, 0
	}
	w := &waiter{info: heldOf(c, brk), call: c, release: make(chan struct{})}
	g.queue = append(g.queue, w)
	g.dispatchLocked()
	g.mu.Unlock()
	g.changed()
	<-w.release
}

// leave runs on the serving goroutine once the request was answered with
// errno. A stepped request that asked to show its reply waits here, and so
// does one that tripped brk, an errno= breakpoint.
func (g *Gate) leave(c *fuse.Call, errno syscall.Errno, brk string) {
	if brk == "" && !g.holding.Load() {
		return
	}
	g.mu.Lock()
	w := g.inflight
	if w != nil && w.call == c {
		g.inflight = nil
	} else {
		w = nil
	}
	hold := !g.released && (brk != "" || (w != nil && w.showReply))
	if hold {
		if !g.holding.Load() {
			g.holding.Store(true)
			g.reason, g.stepped = brk, 0
		}
		if w == nil {
			w = &waiter{info: heldOf(c, brk), call: c}
		}
		w.info.Errno = errno
		w.reply = make(chan struct{})
		g.replyAt = w
	}
	g.dispatchLocked()
	g.mu.Unlock()
	g.changed()
	if hold {
		<-w.reply
	}
}

// dispatchLocked releases what the state allows: everything when not
// holding, else the oldest queued request for a pending step, once the
// previous stepped request is answered and no reply is held.
func (g *Gate) dispatchLocked() {
	if !g.holding.Load() {
		for _, w := range g.queue {
			close(w.release)
		}
		g.queue = nil
		return
	}
	if g.inflight != nil || g.replyAt != nil || len(g.credits) == 0 || len(g.queue) == 0 {
		return
	}
	w := g.queue[0]
	g.queue[0] = nil
	g.queue = g.queue[1:]
	w.showReply = g.credits[0]
	g.credits = g.credits[1:]
	g.inflight = w
	g.stepped++
	close(w.release)
}

// Step serves exactly one request, the oldest held, then holds again; with
// a reply held, it hands that reply to the guest instead. Without a hold
// it does nothing.
func (g *Gate) Step() { g.step(false) }

// StepShowReply serves the oldest held request and holds it again after
// its reply, before the guest sees it.
func (g *Gate) StepShowReply() { g.step(true) }

func (g *Gate) step(showReply bool) {
	g.mu.Lock()
	switch {
	case !g.holding.Load():
	case g.replyAt != nil:
		close(g.replyAt.reply)
		g.replyAt = nil
		if showReply {
			g.credits = append(g.credits, true)
		}
	default:
		g.credits = append(g.credits, showReply)
	}
	g.dispatchLocked()
	g.mu.Unlock()
	g.changed()
}

// Continue lets every held request go and runs until the next breakpoint.
func (g *Gate) Continue() {
	g.mu.Lock()
	g.continueLocked()
	g.mu.Unlock()
	g.changed()
}

func (g *Gate) continueLocked() {
	g.holding.Store(false)
	g.reason, g.credits = "", nil
	g.inflight = nil // it goes on being served; leave no longer waits for it
	if g.replyAt != nil {
		close(g.replyAt.reply)
		g.replyAt = nil
	}
	g.dispatchLocked()
}

// release lets everything go and holds nothing until resume.
func (g *Gate) release() {
	g.mu.Lock()
	g.released = true
	g.continueLocked()
	g.mu.Unlock()
	g.changed()
}

func (g *Gate) resume() {
	g.mu.Lock()
	g.released = false
	g.mu.Unlock()
}

// Released reports whether the gate was released for a shutdown.
func (g *Gate) Released() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.released
}

func heldOf(c *fuse.Call, rule string) Held {
	return Held{
		Unique: c.Unique, Op: c.Opcode, OpName: fuse.OpName(c.Opcode), Nodeid: c.Nodeid,
		Path: c.Path(), Name: c.Name, Offset: c.Offset, Size: c.Size, Since: c.Arrived, Rule: rule,
	}
}
