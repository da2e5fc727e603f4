package rules

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// These tests drive the real server stack (passthrough over a temporary
// directory, the /init.krun overlay, the trace tap) with requests encoded
// as the kernel sends them, from as many goroutines as a transport's
// workers; only the transport itself is left out (the /dev/fuse and guest
// tests in cmd/krunbench cover it).

// waitBound bounds every wait for the gate: generous, never a measurement.
const waitBound = 20 * time.Second

type stack struct {
	t      testing.TB
	srv    *fuse.Server
	eng    *Engine
	tap    *trace.Tap
	unique atomic.Uint64
}

func newStack(t testing.TB, rules ...string) *stack {
	t.Helper()
	return newStackHook(t, true, rules...)
}

// newStackHook is newStack; hook false leaves the engine out of the server.
func newStackHook(t testing.TB, hook bool, rules ...string) *stack {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/hosts": "127.0.0.1 localhost\n", "etc/group": "root:x:0:\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pt, err := passthrough.New(dir, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ov := overlay.New(pt)
	ov.SetPayload([]byte("#!/bin/sh\necho the init\n"))
	var parsed []*Rule
	for _, text := range rules {
		r, err := Parse(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		parsed = append(parsed, r)
	}
	s := &stack{t: t, eng: New(parsed...), tap: trace.NewTap(trace.Options{Resolver: ov, Inodes: ov, EagerPaths: true})}
	opts := fuse.Options{Observer: s.tap}
	if hook {
		opts.Hook = s.eng
	}
	s.srv = fuse.NewServer(ov, opts)
	t.Cleanup(func() {
		s.srv.Release()
		s.srv.Reset()
	})
	if h, _ := s.call(fuse.OpInit, 0, fuse.InitIn{Major: fuse.KernelVersion, Minor: fuse.KernelMinor, MaxReadahead: 1 << 17}); h.Error != 0 {
		t.Fatalf("INIT: %d", h.Error)
	}
	return s
}

// call serves one request and returns the reply's header and body.
func (s *stack) call(op uint32, nodeid uint64, body ...any) (fuse.OutHeader, []byte) {
	out := make([]byte, 1<<17)
	n, reply := s.srv.Serve([][]byte{fusetest.Request(op, s.unique.Add(1), nodeid, body...)}, [][]byte{out})
	if !reply {
		return fuse.OutHeader{}, nil
	}
	var oh fuse.OutHeader
	if err := binary.Read(bytes.NewReader(out[:n]), binary.LittleEndian, &oh); err != nil {
		s.t.Errorf("reply: %v", err)
	}
	return oh, out[16:n]
}

func (s *stack) lookup(parent uint64, name string) (uint64, int32) {
	h, body := s.call(fuse.OpLookup, parent, name)
	if h.Error != 0 {
		return 0, h.Error
	}
	return binary.LittleEndian.Uint64(body), 0
}

// async serves a request on its own goroutine, as a transport's worker
// does; the reply's errno arrives on the channel.
func (s *stack) async(op uint32, nodeid uint64, body ...any) <-chan int32 {
	done := make(chan int32, 1)
	go func() {
		h, _ := s.call(op, nodeid, body...)
		done <- h.Error
	}()
	return done
}

// waitState waits until the gate's state satisfies ok.
func (s *stack) waitState(what string, ok func(State) bool) State {
	s.t.Helper()
	deadline := time.After(waitBound)
	for {
		st := s.eng.Gate().State()
		if ok(st) {
			return st
		}
		select {
		case <-s.eng.Gate().Changes():
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			s.t.Fatalf("gate never reached %s; state %+v", what, st)
		}
	}
}

func (s *stack) served() []trace.Event { return s.tap.Recent(0) }

// errnoReply waits for a reply, within the bound.
func errnoReply(t *testing.T, ch <-chan int32, what string) int32 {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(waitBound):
		t.Fatalf("%s: no reply", what)
		return 0
	}
}

// notYet checks that a held request has not been answered.
func notYet(t *testing.T, ch <-chan int32, what string) {
	t.Helper()
	select {
	case e := <-ch:
		t.Fatalf("%s was answered (errno %d) while the gate held it", what, e)
	default:
	}
}

func TestFaultAnswersWithErrnoAndIsMarked(t *testing.T) {
	s := newStack(t, "fault OPEN /etc/passwd ENOENT")
	etc, _ := s.lookup(fuse.RootID, "etc")
	passwd, e := s.lookup(etc, "passwd")
	if e != 0 {
		t.Fatalf("LOOKUP /etc/passwd failed (%d): the fault is on OPEN only", e)
	}
	hosts, _ := s.lookup(etc, "hosts")
	if h, _ := s.call(fuse.OpOpen, passwd, fuse.OpenIn{Flags: syscall.O_RDONLY}); h.Error != -int32(syscall.ENOENT) {
		t.Errorf("OPEN /etc/passwd: errno %d, want -ENOENT", h.Error)
	}
	if h, _ := s.call(fuse.OpOpen, hosts, fuse.OpenIn{Flags: syscall.O_RDONLY}); h.Error != 0 {
		t.Errorf("OPEN /etc/hosts: errno %d, want success", h.Error)
	}
	var marked []string
	for _, ev := range s.served() {
		if ev.Injected != "" {
			marked = append(marked, ev.OpName+" "+ev.Path+" "+ev.Injected)
		}
	}
	if len(marked) != 1 || marked[0] != "OPEN /etc/passwd ENOENT (rule 1)" {
		t.Errorf("injected events %q, want the one OPEN of /etc/passwd", marked)
	}
	if st := s.eng.Rules()[0]; st.Hits != 1 || st.Matches != 1 {
		t.Errorf("rule counters %+v, want 1 match and 1 hit", st)
	}
}

func TestFaultNthReadOfInit(t *testing.T) {
	s := newStack(t, "fault READ /init.krun EIO nth=2", "fault READ /etc/hosts short=4")
	init, _ := s.lookup(fuse.RootID, "init.krun")
	read := func(node uint64, off uint64) (int32, int) {
		h, body := s.call(fuse.OpRead, node, fuse.ReadIn{Offset: off, Size: 4096})
		return h.Error, len(body)
	}
	if e, n := read(init, 0); e != 0 || n == 0 {
		t.Errorf("first READ of /init.krun: errno %d, %d bytes; want the payload", e, n)
	}
	if e, _ := read(init, 0); e != -int32(syscall.EIO) {
		t.Errorf("second READ of /init.krun: errno %d, want -EIO", e)
	}
	if e, n := read(init, 0); e != 0 || n == 0 {
		t.Errorf("third READ of /init.krun: errno %d, %d bytes; nth=2 fires once", e, n)
	}
	etc, _ := s.lookup(fuse.RootID, "etc")
	hosts, _ := s.lookup(etc, "hosts")
	h, open := s.call(fuse.OpOpen, hosts, fuse.OpenIn{Flags: syscall.O_RDONLY})
	if h.Error != 0 {
		t.Fatalf("OPEN /etc/hosts: %d", h.Error)
	}
	fh := binary.LittleEndian.Uint64(open)
	h, body := s.call(fuse.OpRead, hosts, fuse.ReadIn{Fh: fh, Size: 4096})
	if h.Error != 0 || string(body) != "127." {
		t.Errorf("short=4 READ of /etc/hosts: errno %d, %q; want the first 4 bytes", h.Error, body)
	}
}

func TestBreakHoldsEverythingAndStepsOneByOne(t *testing.T) {
	s := newStack(t, "break LOOKUP /etc/*")
	etc, _ := s.lookup(fuse.RootID, "etc") // /etc itself does not match /etc/*
	first := s.async(fuse.OpLookup, etc, "passwd")
	st := s.waitState("a held LOOKUP", func(st State) bool { return len(st.Queued) == 1 })
	if !st.Holding || st.Queued[0].Path != "/etc/passwd" || st.Queued[0].Rule != "rule 1: break LOOKUP /etc/*" {
		t.Fatalf("held %+v, want LOOKUP /etc/passwd by rule 1", st)
	}
	// Requests behind it queue, whatever they are, in arrival order.
	names := []string{"hosts", "group", "nonexistent"}
	var later []<-chan int32
	for i, name := range names {
		later = append(later, s.async(fuse.OpLookup, etc, name))
		s.waitState("queued "+name, func(st State) bool { return len(st.Queued) == i+2 })
	}
	getattr := s.async(fuse.OpGetattr, fuse.RootID, fuse.GetAttrIn{})
	s.waitState("queued GETATTR", func(st State) bool { return len(st.Queued) == 5 })
	before := len(s.served())
	notYet(t, first, "the held LOOKUP")

	// Each step serves exactly one, the oldest, and holds the rest.
	order := append([]<-chan int32{first}, later...)
	for i, ch := range order {
		s.eng.Gate().Step()
		e := errnoReply(t, ch, "stepped request")
		if i < 3 && e != 0 {
			t.Errorf("step %d: errno %d", i+1, e)
		}
		s.waitState("step done", func(st State) bool { return len(st.Queued) == 4-i })
		for _, rest := range order[i+1:] {
			notYet(t, rest, "a request behind the stepped one")
		}
		if got := len(s.served()) - before; got != i+1 {
			t.Fatalf("after %d steps the trace has %d requests served", i+1, got)
		}
	}
	if st := s.eng.Gate().State(); !st.Holding || st.Stepped != 4 {
		t.Errorf("after 4 steps: %+v, want still holding with 4 stepped", st)
	}
	s.eng.Gate().Continue()
	if e := errnoReply(t, getattr, "GETATTR after continue"); e != 0 {
		t.Errorf("GETATTR: errno %d", e)
	}
	var got []string
	for _, ev := range s.served()[before:] {
		got = append(got, ev.OpName+" "+ev.Name)
	}
	want := []string{"LOOKUP passwd", "LOOKUP hosts", "LOOKUP group", "LOOKUP nonexistent", "GETATTR "}
	if len(got) != len(want) {
		t.Fatalf("served %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("served %q, want %q (none lost, none reordered)", got, want)
			break
		}
	}
	// Running again: the next match holds again.
	again := s.async(fuse.OpLookup, etc, "hosts")
	s.waitState("held again", func(st State) bool { return len(st.Queued) == 1 })
	s.eng.Gate().Continue()
	errnoReply(t, again, "LOOKUP after the second continue")
}

func TestStepShowReplyHoldsTheReply(t *testing.T) {
	s := newStack(t, "break LOOKUP /etc/*")
	etc, _ := s.lookup(fuse.RootID, "etc")
	held := s.async(fuse.OpLookup, etc, "nonexistent")
	s.waitState("held", func(st State) bool { return len(st.Queued) == 1 })
	s.eng.Gate().StepShowReply()
	st := s.waitState("reply held", func(st State) bool { return st.Reply != nil })
	if st.Reply.Errno != syscall.ENOENT || st.Reply.Name != "nonexistent" {
		t.Errorf("reply held %+v, want LOOKUP nonexistent answered ENOENT", *st.Reply)
	}
	notYet(t, held, "a request whose reply is held")
	s.eng.Gate().Step()
	if e := errnoReply(t, held, "released reply"); e != -int32(syscall.ENOENT) {
		t.Errorf("errno %d, want -ENOENT", e)
	}
	s.eng.Gate().Continue()
}

func TestBreakOnReplyErrnoAndEOF(t *testing.T) {
	s := newStack(t, "break LOOKUP errno=ENOENT", "break READ /init.krun eof")
	init, _ := s.lookup(fuse.RootID, "init.krun") // succeeds: not held
	missing := s.async(fuse.OpLookup, fuse.RootID, "missing")
	st := s.waitState("reply held", func(st State) bool { return st.Reply != nil })
	if st.Reply.Errno != syscall.ENOENT || st.Reason != "rule 1: break LOOKUP errno=ENOENT" {
		t.Errorf("held %+v", st)
	}
	s.eng.Gate().Continue()
	errnoReply(t, missing, "LOOKUP missing")

	if h, body := s.call(fuse.OpRead, init, fuse.ReadIn{Size: 4096}); h.Error != 0 || len(body) == 0 {
		t.Fatalf("READ at 0 held or failed: %d", h.Error)
	}
	size := uint64(len("#!/bin/sh\necho the init\n"))
	eof := s.async(fuse.OpRead, init, fuse.ReadIn{Offset: size, Size: 4096})
	st = s.waitState("EOF read held", func(st State) bool { return len(st.Queued) == 1 })
	if st.Queued[0].Offset != size || st.Queued[0].Path != "/init.krun" {
		t.Errorf("held %+v, want the READ of /init.krun at its end", st.Queued[0])
	}
	s.eng.Gate().Continue()
	errnoReply(t, eof, "EOF READ")
}

func TestReleaseLetsHeldRequestsGo(t *testing.T) {
	s := newStack(t, "break GETATTR", "fault LOOKUP delay=1h")
	held := s.async(fuse.OpGetattr, fuse.RootID, fuse.GetAttrIn{})
	s.waitState("held", func(st State) bool { return len(st.Queued) == 1 })
	behind := s.async(fuse.OpStatfs, fuse.RootID)
	s.waitState("queued", func(st State) bool { return len(st.Queued) == 2 })
	delayed := s.async(fuse.OpLookup, fuse.RootID, "etc")
	// A transport shutting down (Device.Reset, fusedev's Close) releases
	// first: everything held is served, delays end, nothing new holds.
	s.srv.Release()
	errnoReply(t, held, "held GETATTR")
	errnoReply(t, behind, "queued STATFS")
	errnoReply(t, delayed, "delayed LOOKUP")
	if h, _ := s.call(fuse.OpGetattr, fuse.RootID, fuse.GetAttrIn{}); h.Error != 0 {
		t.Errorf("GETATTR after release: %d", h.Error)
	}
	// Reset (the session ends) makes the rules hold again.
	s.srv.Reset()
	s.call(fuse.OpInit, 0, fuse.InitIn{Major: fuse.KernelVersion, Minor: fuse.KernelMinor})
	again := s.async(fuse.OpGetattr, fuse.RootID, fuse.GetAttrIn{})
	s.waitState("held after reset", func(st State) bool { return len(st.Queued) == 1 })
	s.eng.Gate().Continue()
	errnoReply(t, again, "GETATTR after reset")
}

func TestDisableHolding(t *testing.T) {
	s := newStack(t, "break GETATTR")
	held := s.async(fuse.OpGetattr, fuse.RootID, fuse.GetAttrIn{})
	s.waitState("held", func(st State) bool { return len(st.Queued) == 1 })
	s.eng.DisableHolding()
	errnoReply(t, held, "GETATTR")
	if h, _ := s.call(fuse.OpGetattr, fuse.RootID, fuse.GetAttrIn{}); h.Error != 0 {
		t.Errorf("GETATTR: %d", h.Error)
	}
	if st := s.eng.Rules()[0]; st.Enabled || st.Hits != 1 {
		t.Errorf("rule after disable: %+v, want disabled with 1 hit", st)
	}
}
