package tui

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

type inodeKeys struct {
	Sort, Reverse, Up, Down, PageUp, PageDown key.Binding
}

func newInodeKeys() inodeKeys {
	return inodeKeys{
		Sort:     key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort by next column")),
		Reverse:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reverse order")),
		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown", "f"), key.WithHelp("pgdn", "page down")),
	}
}

// inodeSort is a column the inode table can be sorted by.
type inodeSort int

const (
	sortNodeid inodeSort = iota
	sortPath
	sortNlookup
	sortOpen
	sortRead
	numInodeSorts
)

var inodeSortNames = [...]string{"nodeid", "path", "nlookup", "open", "read"}

// inodes is the live inode table pane.
type inodes struct {
	ctx     *Context
	keys    inodeKeys
	rows    []trace.InodeRow
	by      inodeSort
	reverse bool
	top     int
	w, h    int
	viewCache
}

func newInodes(ctx *Context) *inodes { return &inodes{ctx: ctx, keys: newInodeKeys()} }

func (p *inodes) Title() string    { return "inodes" }
func (p *inodes) SetSize(w, h int) { p.w, p.h = w, h }
func (p *inodes) Capturing() bool  { return false }

func (p *inodes) Bindings() []key.Binding {
	k := p.keys
	return []key.Binding{k.Sort, k.Reverse, k.Up, k.Down, k.PageUp, k.PageDown}
}

// set replaces the table with rows, which it keeps (the source hands
// them over). Sources send them ordered by nodeid, the default order,
// which is then kept as it is.
func (p *inodes) set(rows []trace.InodeRow) {
	p.invalidate()
	p.rows = rows
	if p.by == sortNodeid && !p.reverse && slices.IsSortedFunc(rows, func(a, b trace.InodeRow) int { return cmp.Compare(a.Nodeid, b.Nodeid) }) {
		return
	}
	p.sort()
}

func (p *inodes) less(a, b *trace.InodeRow) bool {
	switch p.by {
	case sortPath:
		if a.Path != b.Path {
			return a.Path < b.Path
		}
	case sortNlookup:
		if a.Nlookup != b.Nlookup {
			return a.Nlookup > b.Nlookup
		}
	case sortOpen:
		if a.Open != b.Open {
			return a.Open > b.Open
		}
	case sortRead:
		if a.BytesRead != b.BytesRead {
			return a.BytesRead > b.BytesRead
		}
	}
	return a.Nodeid < b.Nodeid
}

func (p *inodes) sort() {
	sort.SliceStable(p.rows, func(i, j int) bool {
		if p.reverse {
			return p.less(&p.rows[j], &p.rows[i])
		}
		return p.less(&p.rows[i], &p.rows[j])
	})
}

func (p *inodes) page() int { return max(p.h-3, 1) }

func (p *inodes) Update(msg tea.KeyPressMsg) tea.Cmd {
	p.invalidate()
	k := p.keys
	last := max(len(p.rows)-p.page(), 0)
	switch {
	case key.Matches(msg, k.Sort):
		p.by = (p.by + 1) % numInodeSorts
		p.sort()
	case key.Matches(msg, k.Reverse):
		p.reverse = !p.reverse
		p.sort()
	case key.Matches(msg, k.Up):
		p.top = max(p.top-1, 0)
	case key.Matches(msg, k.Down):
		p.top = min(p.top+1, last)
	case key.Matches(msg, k.PageUp):
		p.top = max(p.top-p.page(), 0)
	case key.Matches(msg, k.PageDown):
		p.top = min(p.top+p.page(), last)
	}
	return nil
}

// HumanBytes prints a byte count compactly: 512B, 4.0K, 1.5M, 2.0G.
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%c", float64(n)/float64(div), "KMGTP"[exp])
}

func (p *inodes) View(focused bool) string {
	st := p.ctx.Styles
	style, title := styleFor(p.ctx, focused)
	inner := max(p.w-2, 0)
	pathW := max(inner-8-8-5-7-4, 8)
	row := func(id, path, nl, open, read string) string {
		return fmt.Sprintf("%7s %-*s %7s %4s %7s", id, pathW, fitLine(path, pathW), nl, open, read)
	}
	dir := "↑"
	if p.reverse {
		dir = "↓"
	}
	heads := [...]string{sortNodeid: "NODEID", sortPath: "PATH", sortNlookup: "NLOOKUP", sortOpen: "OPEN", sortRead: "READ"}
	heads[p.by] += dir // the sort column carries its direction
	lines := []string{st.Muted.Render(row(heads[sortNodeid], heads[sortPath], heads[sortNlookup], heads[sortOpen], heads[sortRead]))}
	p.top = min(p.top, max(len(p.rows)-p.page(), 0))
	end := min(p.top+p.page(), len(p.rows))
	for i := p.top; i < end; i++ {
		r := &p.rows[i]
		path := trace.Printable(r.Path)
		if path == "" {
			path = "?"
		}
		s := row(strconv.FormatUint(r.Nodeid, 10), path, strconv.FormatUint(r.Nlookup, 10),
			strconv.FormatInt(r.Open, 10), HumanBytes(r.BytesRead))
		if r.Synthetic {
			s = st.InitRead.Render(s)
		}
		lines = append(lines, s)
	}
	for len(lines) < p.page()+1 {
		lines = append(lines, "")
	}
	lines = append(lines, st.Muted.Render(fmt.Sprintf("%d inodes · sorted by %s %s · s sort  r reverse", len(p.rows), inodeSortNames[p.by], dir)))
	return box(p.ctx, style, title, p.Title(), "", lines, p.w, p.h)
}
