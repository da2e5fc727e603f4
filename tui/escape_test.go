package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// TestGuestNamesEscapedInPanes: names, symlink targets and paths a guest
// chose reach the traffic and inode panes escaped (trace.Printable): the
// rendered frame holds no BEL, CR, OSC or screen clear of theirs, only the
// panes' own styling. The end-to-end check through a real /dev/fuse mount
// is cmd/krunbench's TestGuestNamesAreEscapedOnTheTerminal; this one
// renders the panes the same events feed.
func TestGuestNamesEscapedInPanes(t *testing.T) {
	const name, target = "a\x1b]52;c;QQ==\x07", "\rb\x1b[2J"
	m := New(Options{Source: newFakeSource()})
	t.Cleanup(m.Close)
	resize(m, 200, 50)
	m.apply(&SourceMsg{
		Events: []trace.Event{
			{Seq: 1, Time: time.Millisecond, Op: fuse.OpLookup, OpName: "LOOKUP", Nodeid: 1, Path: "/", Name: name, NewNodeid: 7},
			{Seq: 2, Time: 2 * time.Millisecond, Op: fuse.OpSymlink, OpName: "SYMLINK\x07", Nodeid: 1, Path: "/", Name: "l", NewName: target, NewNodeid: 8},
		},
		Inodes: []trace.InodeRow{{Nodeid: 7, Path: "/" + name, Nlookup: 1}},
	})
	raw := m.View().Content
	for _, bad := range []string{"\x07", "\r", "\x1b]", "\x1b[2J"} {
		if strings.Contains(raw, bad) {
			t.Errorf("frame holds a raw %q", bad)
		}
	}
	s := screen(m)
	for _, want := range []string{trace.Printable(name), trace.Printable(target), `SYMLINK\x07`, "/" + trace.Printable(name)} {
		if !strings.Contains(s, want) {
			t.Errorf("frame lacks %q:\n%s", want, s)
		}
	}
}
