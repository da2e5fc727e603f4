package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/session/recording"
)

// statusBar draws the bottom line: what runs, its state and what was
// dropped.
func (m *Model) statusBar() string {
	st := m.ctx.Styles
	bar := st.StatusBar
	sep := bar.Render(" · ")
	var parts []string
	if m.title != "" {
		parts = append(parts, st.StatusKey.Render(" "+m.title))
	} else {
		parts = append(parts, st.StatusKey.Render(" krunbench"))
	}
	in := m.info
	if in.Engine != "" {
		parts = append(parts, bar.Render(in.Engine))
	}
	if in.Accel != "" {
		parts = append(parts, bar.Render(in.Accel))
	}
	if in.CPUs > 0 {
		parts = append(parts, bar.Render(strconv.Itoa(in.CPUs)+" vCPU"))
	}
	if in.MemMiB > 0 {
		parts = append(parts, bar.Render(strconv.Itoa(in.MemMiB)+" MiB"))
	}
	parts = append(parts, m.stateText())
	left := strings.Join(parts, sep)

	var right []string
	if m.flash != "" {
		right = append(right, st.StatusKey.Render(m.flash))
	}
	if m.dropped > 0 || m.consoleDropped > 0 {
		d := fmt.Sprintf("dropped %d events", m.dropped)
		if m.consoleDropped > 0 {
			d += fmt.Sprintf(", %s console", HumanBytes(m.consoleDropped))
		}
		right = append(right, st.StatusKey.Render(d))
	} else {
		right = append(right, bar.Render("dropped 0"))
	}
	if m.con.attached {
		right = append(right, st.StatusKey.Render(DetachKey)+bar.Render(" detach"))
	} else {
		right = append(right, st.StatusKey.Render("?")+bar.Render(" help"))
	}
	r := strings.Join(right, sep) + bar.Render(" ")
	gap := m.ctx.Width - ansi.StringWidth(left) - ansi.StringWidth(r)
	if gap < 2 {
		return fitLine(left+bar.Render(" "), m.ctx.Width)
	}
	return left + bar.Render(strings.Repeat(" ", gap)) + r
}

// stateText is the session's state for the status bar.
func (m *Model) stateText() string {
	st := m.ctx.Styles
	bar := st.StatusBar
	switch {
	case m.src == nil:
		return bar.Render("no guest")
	case m.status.State == recording.StateExited:
		s := bar.Render("exited ") + st.StatusKey.Render("code "+strconv.Itoa(m.status.Code))
		return s
	case m.status.State == recording.StateFailed:
		return st.StatusKey.Render(m.status.String())
	case m.ended && m.status.State == "":
		return bar.Render("ended")
	}
	if m.booting() {
		return bar.Render(fmt.Sprintf("booting %.1fs", m.BootElapsed().Seconds()))
	}
	s := string(m.status.State)
	if m.ended {
		s += " (source ended)"
	}
	return bar.Render(s)
}
