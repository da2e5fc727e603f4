package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/krunbench/krunbench/session/recording"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/trace"
)

// TestXattrNameIsNotAPath: an attribute request shows the attribute's
// name apart from the file's path.
func TestXattrNameIsNotAPath(t *testing.T) {
	ev := trace.Event{Op: fuse.OpGetxattr, OpName: "GETXATTR", Nodeid: 2, Path: "/init.krun", Name: "security.capability"}
	if got := target(&ev); got != "/init.krun xattr security.capability" {
		t.Fatalf("target %q", got)
	}
}

// TestInodeHeaderMarksSortColumn: the column the table is sorted by
// carries the sort's direction.
func TestInodeHeaderMarksSortColumn(t *testing.T) {
	m := New(Options{Source: newFakeSource()})
	defer m.Close()
	resize(m, 160, 50)
	m.apply(&SourceMsg{Inodes: []trace.InodeRow{{Nodeid: 1, Path: "/"}, {Nodeid: 2, Path: "/init.krun"}}})
	if s := screen(m); !strings.Contains(s, "NODEID↑") {
		t.Fatalf("no sort mark on NODEID:\n%s", s)
	}
	press(m, "3", "s") // the inode pane (no library here)
	if s := screen(m); !strings.Contains(s, "PATH↑") || strings.Contains(s, "NODEID↑") {
		t.Fatalf("the mark did not move to PATH:\n%s", s)
	}
	press(m, "r")
	if s := screen(m); !strings.Contains(s, "PATH↓") {
		t.Fatalf("reverse not marked:\n%s", s)
	}
}

// TestTimelineMarksDoNotHideEachOther: moments close together at the end
// of a long boot still each get a cell of the bar.
func TestTimelineMarksDoNotHideEachOther(t *testing.T) {
	var b bootTimeline
	at := func(ms int) time.Duration { return 4600*time.Millisecond + time.Duration(ms)*time.Millisecond }
	b.event(&trace.Event{Op: fuse.OpInit, Time: at(0)})
	b.milestone(recording.Milestone{Name: "mounted", At: at(500)})
	b.milestone(recording.Milestone{Name: "config", At: at(760)})
	b.milestone(recording.Milestone{Name: "exec", At: at(790)})
	b.milestone(recording.Milestone{Name: "exit", At: at(795)})
	st := &themesStyles{}
	bar := ansi.Strip(b.render(st, 30)[0])
	for _, g := range []string{"I", "M", "C", "E", "X"} {
		if !strings.Contains(bar, g) {
			t.Fatalf("mark %s hidden: %q", g, bar)
		}
	}
	if i, j := strings.Index(bar, "C"), strings.Index(bar, "X"); i > j {
		t.Fatalf("marks out of order: %q", bar)
	}
}
