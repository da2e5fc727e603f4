// Package rules is krunbench's init debugger: a small language of rules
// over the FUSE conversation (opcodes, a path glob, conditions), and the
// engine that applies them inside the server through its fuse.Hook.
// A break rule holds the matching request, and everything queued behind
// it, at a gate that steps one request at a time; a fault rule answers
// with an errno instead of serving, delays the request, or shortens a
// READ, once, always, every Nth time or with a seeded probability.
//
// One rule a line:
//
//	break LOOKUP /etc/*
//	break READ /init.krun eof
//	fault OPEN /etc/passwd ENOENT
//	fault READ /init.krun EIO nth=2
//	fault LOOKUP,GETATTR /lib/** delay=2s p=0.1 seed=7
//
// Words after the kind: opcodes (comma-separated, or *), an optional path
// glob (starting with /; * and ? stay within a path element, a trailing
// /** matches everything below), conditions (nodeid=N, eof: a READ at or
// past the end of the file, errno=NAME: the reply's errno, nth=N: only the
// Nth match), a fault's actions (an errno name, delay=DURATION, short=N for
// READ) and how often it fires (once, always, every=N, p=P with seed=S).
package rules

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Kind says what a rule does when it fires.
type Kind int

// The kinds of rules.
const (
	// Break holds the request at the gate before it is served (after it
	// is served, when the rule has an errno= condition).
	Break Kind = iota + 1
	// Fault changes the request: an errno, a delay, a short READ.
	Fault
)

func (k Kind) String() string {
	switch k {
	case Break:
		return "break"
	case Fault:
		return "fault"
	}
	return "kind?"
}

// Rule is one parsed rule. Its zero conditions match everything.
type Rule struct {
	Kind Kind
	// Ops is a bit per opcode (all opcodes are below 64); AllOps for *.
	Ops uint64
	// Glob is the path pattern; empty matches any path.
	Glob string
	// Nodeid, when non-zero, must equal the request's nodeid.
	Nodeid uint64
	// EOF requires a READ at or past the end of the file.
	EOF bool
	// ReplyErrno, when non-zero, requires the reply to fail with it; the
	// rule is then decided after the request was served.
	ReplyErrno syscall.Errno
	// Nth, when non-zero, fires on the Nth match only.
	Nth uint64

	// Errno, Delay and Short are a fault's actions.
	Errno syscall.Errno
	Delay time.Duration
	Short uint32

	// How often a matching rule fires: Once, Every (every Nth match), or
	// with probability P from Seed; all zero means every time.
	Once  bool
	Every uint64
	P     float64
	Seed  uint64

	// Source is the text the rule was parsed from.
	Source string
}

// AllOps is Rule.Ops for *.
const AllOps = ^uint64(0)

// String is the rule in its canonical form.
func (r *Rule) String() string {
	w := []string{r.Kind.String(), opsString(r.Ops)}
	if r.Glob != "" {
		w = append(w, r.Glob)
	}
	if r.Nodeid != 0 {
		w = append(w, "nodeid="+strconv.FormatUint(r.Nodeid, 10))
	}
	if r.EOF {
		w = append(w, "eof")
	}
	if r.ReplyErrno != 0 {
		w = append(w, "errno="+trace.ErrnoName(int(r.ReplyErrno)))
	}
	if r.Nth != 0 {
		w = append(w, "nth="+strconv.FormatUint(r.Nth, 10))
	}
	if r.Errno != 0 {
		w = append(w, trace.ErrnoName(int(r.Errno)))
	}
	if r.Delay != 0 {
		w = append(w, "delay="+r.Delay.String())
	}
	if r.Short != 0 {
		w = append(w, "short="+strconv.FormatUint(uint64(r.Short), 10))
	}
	switch {
	case r.Once:
		w = append(w, "once")
	case r.Every != 0:
		w = append(w, "every="+strconv.FormatUint(r.Every, 10))
	case r.P != 0:
		w = append(w, "p="+strconv.FormatFloat(r.P, 'g', -1, 64), "seed="+strconv.FormatUint(r.Seed, 10))
	}
	return strings.Join(w, " ")
}

// Effect says what a fault does, for the trace ("ENOENT", "delay 2s").
func (r *Rule) Effect() string {
	var w []string
	if r.Errno != 0 {
		w = append(w, trace.ErrnoName(int(r.Errno)))
	}
	if r.Delay != 0 {
		w = append(w, "delay "+r.Delay.String())
	}
	if r.Short != 0 {
		w = append(w, "short "+strconv.FormatUint(uint64(r.Short), 10))
	}
	return strings.Join(w, " ")
}

func opsString(ops uint64) string {
	if ops == AllOps {
		return "*"
	}
	var names []string
	for op := range 64 {
		if ops&(1<<op) != 0 {
			names = append(names, fuse.OpName(uint32(op)))
		}
	}
	return strings.Join(names, ",")
}

// matchOp reports whether the rule names opcode op.
func (r *Rule) matchOp(op uint32) bool {
	return op < 64 && r.Ops&(1<<op) != 0
}

// matchPath reports whether p matches the rule's glob.
func (r *Rule) matchPath(p string) bool {
	return matchGlob(r.Glob, p)
}

// matchGlob matches p against pattern: path.Match, plus a trailing "/**"
// that matches the directory itself and everything below it.
func matchGlob(pattern, p string) bool {
	if pattern == "" {
		return true
	}
	if dir, ok := strings.CutSuffix(pattern, "/**"); ok {
		if dir == "" {
			return strings.HasPrefix(p, "/")
		}
		for q := p; q != "/" && q != "." && q != ""; q = path.Dir(q) {
			if ok, _ := path.Match(dir, q); ok {
				return true
			}
		}
		return false
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// fires decides whether the rule fires on its nth match (from 1).
func (r *Rule) fires(n uint64) bool {
	switch {
	case r.Nth != 0:
		return n == r.Nth
	case r.Once:
		return n == 1
	case r.Every != 0:
		return n%r.Every == 0
	case r.P != 0:
		return chance(r.Seed, n) < r.P
	}
	return true
}

// chance is a uniform number in [0, 1) that depends only on seed and n
// (splitmix64), so a run with the same requests fires the same faults.
func chance(seed, n uint64) float64 {
	z := seed + n*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// describe is the rule's short form for errors and the trace.
func describe(id int, r *Rule) string {
	return fmt.Sprintf("rule %d: %s", id, r.String())
}
