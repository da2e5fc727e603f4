package rules

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Engine applies rules to a server's requests: it is the server's
// fuse.Hook (fuse.Options.Hook). Rules can be added and disabled while the
// server runs; the request path reads an immutable snapshot of them.
type Engine struct {
	gate *Gate

	mu    sync.Mutex // serializes changes to set
	set   atomic.Pointer[ruleSet]
	next  int
	stop  chan struct{} // closed by Release: delays end early
	Sleep func(time.Duration, <-chan struct{})
}

// entry is one rule in the engine, with its counters.
type entry struct {
	id      int
	rule    *Rule
	label   string // "rule 2: fault OPEN /etc/passwd ENOENT"
	off     atomic.Bool
	matches atomic.Uint64
	hits    atomic.Uint64
}

// ruleSet is an immutable list of entries and the opcodes they name
// before and after serving, so most requests cost one bit test.
type ruleSet struct {
	entries   []*entry
	before    uint64
	after     uint64
	hasBreaks bool
}

// Status is one rule as the TUI and `rules` commands list it.
type Status struct {
	ID      int
	Rule    *Rule
	Enabled bool
	// Matches counts requests that matched the rule's opcodes, path and
	// conditions; Hits those on which it fired (nth=, every=, p=...).
	Matches uint64
	Hits    uint64
}

// New returns an engine with rules, numbered from 1 in order.
func New(rules ...*Rule) *Engine {
	e := &Engine{gate: newGate(), stop: make(chan struct{}), Sleep: sleep}
	e.set.Store(&ruleSet{})
	for _, r := range rules {
		e.Add(r)
	}
	return e
}

func sleep(d time.Duration, stop <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	}
}

// Gate is the engine's breakpoint gate.
func (e *Engine) Gate() *Gate { return e.gate }

// Add adds a rule and returns its id.
func (e *Engine) Add(r *Rule) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.next++
	en := &entry{id: e.next, rule: r, label: describe(e.next, r)}
	old := e.set.Load()
	e.set.Store(buildSet(append(append([]*entry(nil), old.entries...), en)))
	return en.id
}

// SetEnabled turns rule id on or off; it reports whether the rule exists.
func (e *Engine) SetEnabled(id int, on bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.set.Load()
	for _, en := range old.entries {
		if en.id == id {
			en.off.Store(!on)
			e.set.Store(buildSet(old.entries))
			return true
		}
	}
	return false
}

// DisableHolding disables the breakpoint that started the current hold
// and continues.
func (e *Engine) DisableHolding() {
	reason := e.gate.State().Reason
	for _, en := range e.set.Load().entries {
		if en.label == reason {
			e.SetEnabled(en.id, false)
		}
	}
	e.gate.Continue()
}

// Rules lists the rules with their counters.
func (e *Engine) Rules() []Status {
	set := e.set.Load()
	out := make([]Status, 0, len(set.entries))
	for _, en := range set.entries {
		out = append(out, Status{ID: en.id, Rule: en.rule, Enabled: !en.off.Load(), Matches: en.matches.Load(), Hits: en.hits.Load()})
	}
	return out
}

func buildSet(entries []*entry) *ruleSet {
	s := &ruleSet{entries: entries}
	for _, en := range entries {
		if en.off.Load() {
			continue
		}
		if en.rule.ReplyErrno != 0 {
			s.after |= en.rule.Ops
		} else {
			s.before |= en.rule.Ops
		}
		s.hasBreaks = s.hasBreaks || en.rule.Kind == Break
	}
	return s
}

func bit(op uint32) uint64 {
	if op >= 64 {
		return 0
	}
	return 1 << op
}

// Before implements fuse.Hook: breakpoints first (the request may wait at
// the gate), then faults, counted in the order requests leave the gate.
func (e *Engine) Before(c *fuse.Call) fuse.Intervention {
	op := bit(c.Opcode)
	set := e.set.Load()
	brk := ""
	if set.hasBreaks && set.before&op != 0 {
		for _, en := range set.entries {
			if en.rule.Kind == Break && en.rule.ReplyErrno == 0 && e.fire(en, c) && brk == "" {
				brk = en.label
			}
		}
	}
	e.gate.enter(c, brk)
	// Reloaded: a fault added while the request was held applies to it.
	if set = e.set.Load(); set.before&op != 0 {
		for _, en := range set.entries {
			if en.rule.Kind == Fault && en.rule.ReplyErrno == 0 && e.fire(en, c) {
				return e.inject(en)
			}
		}
	}
	return fuse.Intervention{}
}

// After implements fuse.Hook: errno= rules see the reply here.
func (e *Engine) After(c *fuse.Call, errno fuse.Errno) fuse.Intervention {
	set := e.set.Load()
	var v fuse.Intervention
	brk := ""
	if errno != 0 && set.after&bit(c.Opcode) != 0 {
		for _, en := range set.entries {
			if en.rule.ReplyErrno != errno || !e.fire(en, c) {
				continue
			}
			switch {
			case en.rule.Kind == Break && brk == "":
				brk = en.label
			case en.rule.Kind == Fault && v.Injected == "":
				v = e.inject(en)
			}
		}
	}
	e.gate.leave(c, errno, brk)
	return v
}

// fire matches one enabled rule against the request and counts it.
func (e *Engine) fire(en *entry, c *fuse.Call) bool {
	r := en.rule
	if en.off.Load() || !r.matchOp(c.Opcode) || (r.Nodeid != 0 && r.Nodeid != c.Nodeid) {
		return false
	}
	if r.Glob != "" && !r.matchPath(c.Path()) {
		return false
	}
	if r.EOF {
		size, ok := c.FileSize()
		if !ok || c.Offset < size {
			return false
		}
	}
	if !r.fires(en.matches.Add(1)) {
		return false
	}
	en.hits.Add(1)
	return true
}

// inject carries out a fault: the delay here, the rest by the server.
func (e *Engine) inject(en *entry) fuse.Intervention {
	r := en.rule
	if r.Delay > 0 {
		e.mu.Lock()
		stop := e.stop
		e.mu.Unlock()
		e.Sleep(r.Delay, stop)
	}
	return fuse.Intervention{Errno: r.Errno, Short: r.Short, Injected: fmt.Sprintf("%s (rule %d)", r.Effect(), en.id)}
}

// Release implements fuse.Hook: the transport is shutting down, so held
// requests and delays end and nothing is held until Resume.
func (e *Engine) Release() {
	e.mu.Lock()
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	e.mu.Unlock()
	e.gate.release()
}

// Resume implements fuse.Hook.
func (e *Engine) Resume() {
	e.mu.Lock()
	select {
	case <-e.stop:
		e.stop = make(chan struct{})
	default:
	}
	e.mu.Unlock()
	e.gate.resume()
}

var _ fuse.Hook = (*Engine)(nil)

// errnoOf is for tests and tools that spell an errno by name.
func errnoOf(name string) syscall.Errno { return errnos[name] }
