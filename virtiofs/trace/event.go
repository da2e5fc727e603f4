// Package trace taps a virtio-fs server's FUSE traffic: it records every
// served request as an Event, keeps the most recent ones in a bounded ring,
// fans them out to subscribers that may lag without ever slowing the server,
// keeps per-opcode statistics and a live per-inode view, and reads and
// writes traces as JSON lines for `krunbench trace show`.
package trace

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Event is one served (or dropped) FUSE request. Its JSON form is one object
// with short lowercase keys; zero-valued fields are left out.
type Event struct {
	// Seq numbers events in the order the tap recorded them, from 1.
	Seq uint64 `json:"seq"`
	// Time is when the request arrived, as an offset from the tap's start.
	Time time.Duration `json:"t"`
	// Wall is the wall-clock arrival time.
	Wall time.Time `json:"wall,omitzero"`

	Op     uint32 `json:"op"`
	OpName string `json:"opname"`
	Unique uint64 `json:"unique,omitempty"`
	Nodeid uint64 `json:"nodeid,omitempty"`
	// Path is the path the filesystem knows for Nodeid; it may be filled
	// lazily (see Tap.Resolve) and is empty when the filesystem cannot say.
	Path    string `json:"path,omitempty"`
	Name    string `json:"name,omitempty"`
	NewName string `json:"newname,omitempty"`
	Offset  uint64 `json:"off,omitempty"`
	Size    uint32 `json:"size,omitempty"`
	Flags   uint32 `json:"flags,omitempty"`
	Mode    uint32 `json:"mode,omitempty"`
	Fh      uint64 `json:"fh,omitempty"`

	// Errno is the Linux errno of the reply, 0 on success.
	Errno int `json:"errno,omitempty"`
	// Bytes is the payload byte count of the result (READ, WRITE, READDIR...).
	Bytes   int           `json:"bytes,omitempty"`
	Latency time.Duration `json:"lat,omitempty"`
	// Synthetic is set when the request touched a synthetic inode such as
	// /init.krun; EOF when it was a synthetic READ at or past the end.
	Synthetic bool `json:"syn,omitempty"`
	EOF       bool `json:"eof,omitempty"`
	// NewNodeid is the nodeid an entry reply (LOOKUP, CREATE...) handed out.
	NewNodeid uint64 `json:"newnodeid,omitempty"`
	// Dropped is why the server dropped a malformed request; empty otherwise.
	Dropped string `json:"drop,omitempty"`
	// Injected says what a rule injected into the request (a fault's
	// errno, a delay, a short READ); empty when it was served as asked.
	Injected string `json:"inj,omitempty"`

	Uid uint32 `json:"uid,omitempty"`
	Gid uint32 `json:"gid,omitempty"`
	Pid uint32 `json:"pid,omitempty"`
}

// OK reports whether the request succeeded and was not dropped.
func (ev *Event) OK() bool { return ev.Errno == 0 && ev.Dropped == "" }

// IsInit reports whether the event touched the krun init binary.
func (ev *Event) IsInit() bool {
	if !ev.Synthetic {
		return false
	}
	return path.Base(ev.Path) == "init.krun" || ev.Name == "init.krun"
}

// opNames caches fuse.OpName for the opcodes a Tap counts one by one, so
// the hot path neither formats nor looks up names.
var opNames [numOps]string

func init() {
	for i := range opNames {
		opNames[i] = fuse.OpName(uint32(i))
	}
}

func opName(op uint32) string {
	if op < numOps {
		return opNames[op]
	}
	return fuse.OpName(op)
}

// ErrnoName returns the symbolic name of a Linux errno ("ENOENT"), or
// "errno N" for numbers it does not know. 0 is "ok".
func ErrnoName(e int) string {
	if e == 0 {
		return "ok"
	}
	if e > 0 && e < len(errnoNames) && errnoNames[e] != "" {
		return errnoNames[e]
	}
	return "errno " + strconv.Itoa(e)
}

var errnoNames = [...]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO",
	7: "E2BIG", 8: "ENOEXEC", 9: "EBADF", 10: "ECHILD", 11: "EAGAIN",
	12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST",
	18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
	23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG",
	28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 31: "EMLINK", 32: "EPIPE",
	34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG", 37: "ENOLCK",
	38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 71: "EPROTO",
	75: "EOVERFLOW", 84: "EILSEQ", 95: "EOPNOTSUPP", 110: "ETIMEDOUT",
	116: "ESTALE", 122: "EDQUOT",
}

// hasEntry reports whether a successful op answers with a new nodeid.
func hasEntry(op uint32) bool {
	switch op {
	case fuse.OpLookup, fuse.OpMknod, fuse.OpMkdir, fuse.OpSymlink, fuse.OpLink, fuse.OpCreate:
		return true
	}
	return false
}

// movesBytes reports whether a successful op's result is a byte count.
func movesBytes(op uint32) bool {
	switch op {
	case fuse.OpRead, fuse.OpWrite, fuse.OpReaddir, fuse.OpReaddirplus, fuse.OpReadlink,
		fuse.OpGetxattr, fuse.OpListxattr, fuse.OpCopyFileRange, fuse.OpIoctl:
		return true
	}
	return false
}

// hasRange reports whether the op's offset and size are worth showing.
func hasRange(op uint32) bool {
	switch op {
	case fuse.OpRead, fuse.OpWrite, fuse.OpReaddir, fuse.OpReaddirplus,
		fuse.OpFallocate, fuse.OpLseek, fuse.OpCopyFileRange:
		return true
	}
	return false
}

// FormatLatency prints a latency compactly: "850ns", "12µs", "3.25ms", "1.200s".
func FormatLatency(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
}

// Line renders ev on one line, the way Format prints it, without a newline.
// Names, paths and symlink targets (guest-chosen), and the opcode name and
// drop reason (a trace file may carry anything) are passed through
// Printable.
func Line(ev *Event) string {
	var b strings.Builder
	b.Grow(128)
	name := ev.OpName
	if name == "" {
		name = opName(ev.Op)
	}
	fmt.Fprintf(&b, "#%-6d +%.6fs  %-12s", ev.Seq, ev.Time.Seconds(), Printable(name))
	if ev.Nodeid != 0 {
		fmt.Fprintf(&b, " nodeid=%d", ev.Nodeid)
	}
	if ev.Path != "" {
		b.WriteString(" ")
		b.WriteString(Printable(ev.Path))
	}
	if ev.Name != "" {
		fmt.Fprintf(&b, "  name=%s", Printable(ev.Name))
	}
	if ev.NewName != "" {
		switch ev.Op {
		case fuse.OpSymlink:
			fmt.Fprintf(&b, " target=%s", Printable(ev.NewName))
		default:
			fmt.Fprintf(&b, " newname=%s", Printable(ev.NewName))
		}
	}
	if hasRange(ev.Op) {
		fmt.Fprintf(&b, " off=%d size=%d", ev.Offset, ev.Size)
	}
	if ev.Fh != 0 {
		fmt.Fprintf(&b, " fh=%d", ev.Fh)
	}
	if ev.Flags != 0 {
		fmt.Fprintf(&b, " flags=%#x", ev.Flags)
	}
	if ev.Mode != 0 {
		fmt.Fprintf(&b, " mode=%#o", ev.Mode)
	}
	switch {
	case ev.Dropped != "":
		fmt.Fprintf(&b, "  -> DROPPED: %s", Printable(ev.Dropped))
	case ev.Errno != 0:
		fmt.Fprintf(&b, "  -> %s", ErrnoName(ev.Errno))
	case hasEntry(ev.Op) && ev.NewNodeid != 0:
		fmt.Fprintf(&b, "  -> nodeid=%d  ok", ev.NewNodeid)
	case movesBytes(ev.Op):
		fmt.Fprintf(&b, " -> %d bytes  ok", ev.Bytes)
	default:
		b.WriteString("  -> ok")
	}
	if ev.Latency > 0 {
		b.WriteString("  ")
		b.WriteString(FormatLatency(ev.Latency))
	}
	var tags []string
	if ev.Synthetic {
		if ev.IsInit() {
			tags = append(tags, "init")
		} else {
			tags = append(tags, "synthetic")
		}
	}
	if ev.EOF {
		tags = append(tags, "EOF")
	}
	if ev.Injected != "" {
		tags = append(tags, "INJECTED "+ev.Injected)
	}
	if len(tags) > 0 {
		fmt.Fprintf(&b, "  [%s]", strings.Join(tags, " "))
	}
	return b.String()
}

// Format prints ev readably on one line, e.g.
//
//	#12     +0.004512s  LOOKUP       nodeid=1 /  name=init.krun  -> nodeid=2  ok  12µs  [init]
func Format(w io.Writer, ev Event) error {
	_, err := io.WriteString(w, Line(&ev)+"\n")
	return err
}
