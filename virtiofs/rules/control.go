package rules

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The control protocol drives the gate without the TUI (krunbench run and
// serve --control SOCKET): one command a line, each answered by zero or
// more lines and then "end".
//
//	state            the gate: holding, the held request, those queued, a held reply
//	wait             block until a request is held (or a reply), then state
//	step             serve exactly one request, then state once it is answered
//	reply            serve one and hold its reply, then state
//	continue         let everything go until the next breakpoint
//	disable [ID]     disable rule ID (default: the one holding) and continue
//	rules            the rules with their hit counts
//	add RULE         add a rule ("fault OPEN /etc/passwd ENOENT")
//
// Errors are one line starting with "error: ".
const controlHelp = "commands: state, wait, step, reply, continue, disable [ID], rules, add RULE"

// ServeControl answers control commands from rw until it is closed or ctx
// ends.
func (e *Engine) ServeControl(ctx context.Context, rw io.ReadWriter) error {
	sc := bufio.NewScanner(rw)
	w := bufio.NewWriter(rw)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if cmd == "" {
			continue
		}
		if err := e.command(ctx, w, cmd, strings.TrimSpace(arg)); err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
		}
		fmt.Fprintln(w, "end")
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

func (e *Engine) command(ctx context.Context, w io.Writer, cmd, arg string) error {
	g := e.gate
	switch cmd {
	case "state":
	case "wait":
		if err := e.waitHeld(ctx); err != nil {
			return err
		}
	case "step", "reply":
		before := g.State()
		if !before.Holding {
			return errors.New("not holding: nothing to step")
		}
		if cmd == "step" {
			g.Step()
		} else {
			g.StepShowReply()
		}
		// Answer once the step took effect: the stepped request was
		// answered (or its reply is held), so the state shown is the
		// next. Handing a held reply over takes effect at once.
		if before.Reply != nil {
			break
		}
		if err := e.waitFor(ctx, func(st State) bool {
			return st.Stepped > before.Stepped && (st.Reply != nil || !e.gate.stepping()) || !st.Holding
		}); err != nil {
			return err
		}
	case "continue":
		g.Continue()
	case "disable":
		if arg == "" {
			e.DisableHolding()
			break
		}
		id, err := strconv.Atoi(arg)
		if err != nil || !e.SetEnabled(id, false) {
			return fmt.Errorf("no rule %q", arg)
		}
	case "rules":
		for _, st := range e.Rules() {
			on := "on "
			if !st.Enabled {
				on = "off"
			}
			fmt.Fprintf(w, "%d %s matches=%d hits=%d  %s\n", st.ID, on, st.Matches, st.Hits, st.Rule)
		}
		return nil
	case "add":
		r, err := Parse(arg)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "added rule %d: %s\n", e.Add(r), r)
		return nil
	default:
		return fmt.Errorf("unknown command %q (%s)", cmd, controlHelp)
	}
	WriteState(w, g.State(), time.Now())
	return nil
}

// waitHeld waits until a request is held at the gate or after its reply.
func (e *Engine) waitHeld(ctx context.Context) error {
	return e.waitFor(ctx, func(st State) bool { return st.Holding && (len(st.Queued) > 0 || st.Reply != nil) })
}

func (e *Engine) waitFor(ctx context.Context, ok func(State) bool) error {
	for {
		ch := e.gate.Changes()
		if ok(e.gate.State()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stepping reports whether a stepped request is still being served.
func (g *Gate) stepping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight != nil
}

// WriteState prints the gate's state, a line each:
//
//	holding rule 1: break LOOKUP /etc/* (stepped 2)
//	held LOOKUP /etc/passwd unique=12 waiting 1.2s
//	queued GETATTR / unique=14
//	reply LOOKUP /etc/nosuch unique=16 -> ENOENT
func WriteState(w io.Writer, st State, now time.Time) {
	if !st.Holding {
		fmt.Fprintln(w, "running")
		return
	}
	fmt.Fprintf(w, "holding %s (stepped %d)\n", st.Reason, st.Stepped)
	if st.Reply != nil {
		fmt.Fprintf(w, "reply %s -> %s\n", Describe(st.Reply), errnoText(st.Reply))
	}
	for i := range st.Queued {
		h := &st.Queued[i]
		if i == 0 && st.Reply == nil {
			fmt.Fprintf(w, "held %s waiting %s\n", Describe(h), now.Sub(h.Since).Round(100*time.Millisecond))
		} else {
			fmt.Fprintf(w, "queued %s\n", Describe(h))
		}
	}
}

// Describe is a held request on one line: opcode, path, arguments, unique.
func Describe(h *Held) string {
	var b strings.Builder
	b.WriteString(h.OpName)
	if h.Path != "" {
		b.WriteString(" " + h.Path)
	} else if h.Nodeid != 0 {
		fmt.Fprintf(&b, " nodeid=%d", h.Nodeid)
		if h.Name != "" {
			b.WriteString(" name=" + h.Name)
		}
	}
	if h.Offset != 0 || h.Size != 0 {
		fmt.Fprintf(&b, " off=%d size=%d", h.Offset, h.Size)
	}
	fmt.Fprintf(&b, " unique=%d", h.Unique)
	return b.String()
}

func errnoText(h *Held) string {
	if h.Errno == 0 {
		return "ok"
	}
	return h.Errno.Error()
}

// ListenControl serves the control protocol on a unix socket at path until
// ctx ends; the socket is removed then.
func (e *Engine) ListenControl(ctx context.Context, path string) (stop func(), err error) {
	os.Remove(path) // a stale socket from a killed run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				stopConn := context.AfterFunc(ctx, func() { c.Close() })
				defer stopConn()
				_ = e.ServeControl(ctx, c)
			}()
		}
	}()
	return func() {
		cancel()
		ln.Close()
		<-done
		os.Remove(path)
	}, nil
}
