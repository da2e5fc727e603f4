package tui

import (
	"fmt"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/virtiofs/rules"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// The debugger pane is the init debugger's face: the request a breakpoint
// holds, decoded, with how long the guest has been waiting, the requests
// queued behind it, a reply held before the guest sees it, and the rules
// with their hit counts; a one-line form adds rules. It drives the rules
// engine the session's server runs (rules.Engine), which outlives
// sessions, so breakpoints can be set before launching.

type debuggerKeys struct {
	Step, Reply, Continue, Disable, Add, Toggle, Up, Down, Apply, Cancel key.Binding
}

func newDebuggerKeys() debuggerKeys {
	return debuggerKeys{
		Step:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "step: serve one request, hold again")),
		Reply:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "serve one, hold its reply")),
		Continue: key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "continue to the next breakpoint")),
		Disable:  key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "disable the holding rule, continue")),
		Add:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add a rule (break …/fault …)")),
		Toggle:   key.NewBinding(key.WithKeys("space", "x"), key.WithHelp("space", "rule on/off")),
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "previous rule")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "next rule")),
		Apply:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "add the rule")),
		Cancel:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
	}
}

// gateMsg wakes the app to show the gate again: it changed, or the
// waiting timer moved on.
type gateMsg struct{}

// How often the pane is drawn again by itself: often enough for the
// waiting timer while a request is held, else to refresh hit counts.
const (
	debuggerTickHolding = 200 * time.Millisecond
	debuggerTickIdle    = time.Second
)

type debugger struct {
	ctx     *Context
	keys    debuggerKeys
	eng     *rules.Engine
	cursor  int
	editing bool
	input   textinput.Model
	note    string
	now     func() time.Time
	w, h    int
	viewCache
}

func newDebugger(ctx *Context, eng *rules.Engine) *debugger {
	in := textinput.New()
	in.Prompt = ""
	in.CharLimit = 256
	in.Placeholder = "fault OPEN /etc/passwd ENOENT"
	return &debugger{ctx: ctx, keys: newDebuggerKeys(), eng: eng, input: in, now: time.Now}
}

func (d *debugger) Title() string { return "debugger" }

func (d *debugger) SetSize(w, h int) {
	d.w, d.h = w, h
	d.input.SetWidth(max(w-10, 8))
}

func (d *debugger) Capturing() bool { return d.editing }

func (d *debugger) Bindings() []key.Binding {
	k := d.keys
	return []key.Binding{k.Step, k.Reply, k.Continue, k.Disable, k.Add, k.Toggle, k.Up, k.Down, k.Apply, k.Cancel}
}

// watch waits for the gate's next change or the next tick.
func (d *debugger) watch() tea.Cmd {
	g := d.eng.Gate()
	ch := g.Changes()
	every := debuggerTickIdle
	if g.State().Holding {
		every = debuggerTickHolding
	}
	return func() tea.Msg {
		t := time.NewTimer(every)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		}
		return gateMsg{}
	}
}

func (d *debugger) Update(msg tea.KeyPressMsg) tea.Cmd {
	d.invalidate()
	k := d.keys
	g := d.eng.Gate()
	if d.editing {
		switch {
		case key.Matches(msg, k.Apply):
			r, err := rules.Parse(d.input.Value())
			if err != nil {
				d.note = "rule: " + err.Error()
				return nil
			}
			id := d.eng.Add(r)
			d.note = fmt.Sprintf("added rule %d", id)
			d.editing = false
			d.input.Blur()
			return nil
		case key.Matches(msg, k.Cancel):
			d.editing, d.note = false, ""
			d.input.Blur()
			return nil
		}
		var cmd tea.Cmd
		d.input, cmd = d.input.Update(msg)
		return cmd
	}
	d.note = ""
	switch {
	case key.Matches(msg, k.Step):
		g.Step()
	case key.Matches(msg, k.Reply):
		g.StepShowReply()
	case key.Matches(msg, k.Continue):
		g.Continue()
	case key.Matches(msg, k.Disable):
		d.eng.DisableHolding()
	case key.Matches(msg, k.Add):
		d.editing = true
		d.input.SetValue("")
		return d.input.Focus()
	case key.Matches(msg, k.Toggle):
		if rs := d.eng.Rules(); d.cursor < len(rs) {
			d.eng.SetEnabled(rs[d.cursor].ID, !rs[d.cursor].Enabled)
		}
	case key.Matches(msg, k.Up):
		d.cursor = max(d.cursor-1, 0)
	case key.Matches(msg, k.Down):
		d.cursor = min(d.cursor+1, max(len(d.eng.Rules())-1, 0))
	}
	return nil
}

// WaitingLabel is how the pane shows a held request's wait.
func WaitingLabel(d time.Duration) string {
	return fmt.Sprintf("guest waiting %.1f s", d.Seconds())
}

func (d *debugger) View(focused bool) string {
	st := d.ctx.Styles
	style, title := styleFor(d.ctx, focused)
	inner := max(d.w-2, 1)
	gs := d.eng.Gate().State()
	var lines []string
	badge := st.Muted.Render("running")
	if gs.Holding {
		badge = st.Warn.Render("HOLDING")
		lines = append(lines, st.Muted.Render(fmt.Sprintf("stepped %d · ", gs.Stepped))+st.Warn.Render("stopped by "+gs.Reason))
		queued := gs.Queued
		switch {
		case gs.Reply != nil:
			lines = append(lines, st.Accent.Render("▶ reply held: ")+rules.Describe(gs.Reply)+" → "+errnoLabel(gs.Reply),
				"  "+st.Warn.Render(WaitingLabel(d.now().Sub(gs.Reply.Since))))
		case len(queued) > 0:
			h := &queued[0]
			lines = append(lines, st.Accent.Render("▶ held: ")+rules.Describe(h),
				"  "+st.Warn.Render(WaitingLabel(d.now().Sub(h.Since))))
			queued = queued[1:]
		default:
			lines = append(lines, st.Muted.Render("  nothing waiting: the next request is held"))
		}
		if len(queued) > 0 {
			lines = append(lines, st.Muted.Render(fmt.Sprintf("queued behind (%d):", len(queued))))
			for i := range queued {
				if i == 3 {
					lines = append(lines, st.Muted.Render(fmt.Sprintf("  … %d more", len(queued)-3)))
					break
				}
				lines = append(lines, "  "+rules.Describe(&queued[i]))
			}
		}
	} else {
		lines = append(lines, st.Muted.Render("running: no request held"))
	}
	lines = append(lines, "", st.Title.Render(fmt.Sprintf("rules %*s", max(inner-10, 0), "match  hit")))
	rs := d.eng.Rules()
	if len(rs) == 0 {
		lines = append(lines, st.Muted.Render("none: a to add one"))
	}
	for i, r := range rs {
		mark := st.Accent.Render("●")
		if !r.Enabled {
			mark = st.Muted.Render("○")
		}
		counts := fmt.Sprintf("%5d %4d", r.Matches, r.Hits)
		text := fmt.Sprintf("%d %s", r.ID, r.Rule)
		row := mark + " " + fitLine(text, max(inner-len(counts)-3, 1)) + " " + counts
		if i == d.cursor && focused && !d.editing {
			row = st.Selection.Render(fitLine(ansi.Strip(row), inner))
		}
		lines = append(lines, row)
	}
	if d.editing {
		lines = append(lines, st.Accent.Render("add: ")+d.input.View())
	}
	if d.note != "" {
		lines = append(lines, st.Warn.Render(d.note))
	}
	if focused && !d.editing {
		lines = append(lines, st.Muted.Render("s step · r reply · c continue · d disable · a add"))
	}
	return box(d.ctx, style, title, d.Title(), badge, lines, d.w, d.h)
}

func errnoLabel(h *rules.Held) string {
	if h.Errno == 0 {
		return "ok"
	}
	return trace.ErrnoName(int(h.Errno))
}
