package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"text/tabwriter"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// FileWriter writes events as JSON lines through a buffer. It is safe for
// concurrent use.
type FileWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	enc  encoder
	line []byte // encoding scratch
	n    uint64
	err  error
}

// fileBuffer is the FileWriter's buffer: a recorder writes about 200
// bytes per request, so a write(2) every thousand or so.
const fileBuffer = 256 << 10

// NewFileWriter returns a writer of JSON lines to w. Close flushes it; w
// itself is left open.
func NewFileWriter(w io.Writer) *FileWriter {
	return &FileWriter{bw: bufio.NewWriterSize(w, fileBuffer), line: make([]byte, 0, 512)}
}

// WriteEvent appends one event as a line. After the first error every
// call returns it.
func (f *FileWriter) WriteEvent(ev *Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writeLocked(ev)
}

// writeEvents appends events as lines, under one lock.
func (f *FileWriter) writeEvents(evs []Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range evs {
		if err := f.writeLocked(&evs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (f *FileWriter) writeLocked(ev *Event) error {
	if f.err != nil {
		return f.err
	}
	f.line = append(f.enc.appendJSON(f.line[:0], ev), '\n')
	if _, f.err = f.bw.Write(f.line); f.err == nil {
		f.n++
	}
	return f.err
}

// Written is how many events were written.
func (f *FileWriter) Written() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Flush writes buffered lines out.
func (f *FileWriter) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.err = f.bw.Flush()
	return f.err
}

// Close flushes; it does not close the underlying writer.
func (f *FileWriter) Close() error { return f.Flush() }

// Reader reads events from JSON lines (see LineReader: a last line cut
// short, a trace whose writer died mid-line, ends the stream quietly).
type Reader struct {
	lines LineReader
}

// NewReader returns a reader of JSON lines from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{lines: *NewLineReader(r, "trace")}
}

// Next returns the next event, or io.EOF at the end. Blank lines are
// skipped; a malformed complete line is an error naming its line number.
func (r *Reader) Next() (Event, error) {
	var ev Event
	if err := r.lines.Decode(&ev); err != nil {
		return Event{}, err
	}
	if ev.OpName == "" {
		ev.OpName = opName(ev.Op)
	}
	return ev, nil
}

// Truncated reports whether the input ended in a partial line that was
// skipped.
func (r *Reader) Truncated() bool { return r.lines.Truncated() }

// ReadFile reads every event from JSON lines, tolerating a truncated last
// line.
func ReadFile(r io.Reader) ([]Event, error) {
	rd := NewReader(r)
	var out []Event
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// maxInitReadLines bounds the init.krun reads Summary lists one by one.
const maxInitReadLines = 64

// Summary prints per-opcode counts, errors, bytes and latency percentiles
// over events, then the reads of /init.krun one by one.
func Summary(w io.Writer, events []Event) error {
	s := Summarize(events)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "events: %d  span: %s  errors: %d  bytes: %d  malformed: %d\n\n",
		s.Total.Count, FormatLatency(s.Uptime), s.Total.Errors, s.Total.Bytes, s.Drops.Malformed)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "OP\tCOUNT\tERRORS\tBYTES\tP50\tP99\tMAX\t")
	rows := append(s.Ops, s.Total)
	for i := range rows {
		o := &rows[i]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t\n", Printable(o.Name), o.Count, o.Errors, o.Bytes,
			FormatLatency(o.Latency.P50), FormatLatency(o.Latency.P99), FormatLatency(o.Latency.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	initNodes := map[uint64]string{}
	for i := range events {
		ev := &events[i]
		if !ev.IsInit() || ev.Errno != 0 {
			continue
		}
		switch {
		case ev.Op == fuse.OpLookup && ev.NewNodeid != 0:
			parent := ev.Path
			if parent == "" && ev.Nodeid == fuse.RootID {
				parent = "/"
			}
			initNodes[ev.NewNodeid] = path.Join(parent, ev.Name)
		case ev.Name == "":
			initNodes[ev.Nodeid] = ev.Path
		}
	}
	isInitRead := func(ev *Event) bool {
		if ev.Op != fuse.OpRead {
			return false
		}
		_, known := initNodes[ev.Nodeid]
		return ev.IsInit() || (ev.Synthetic && known)
	}
	var reads, eofs, listed int
	var nbytes int
	for i := range events {
		ev := &events[i]
		if !isInitRead(ev) {
			continue
		}
		reads++
		if ev.EOF {
			eofs++
		}
		nbytes += ev.Bytes
	}
	fmt.Fprintf(bw, "\ninit.krun reads: %d (%d at EOF), %d bytes\n", reads, eofs, nbytes)
	for i := range events {
		ev := &events[i]
		if !isInitRead(ev) {
			continue
		}
		if listed == maxInitReadLines {
			fmt.Fprintf(bw, "  ... %d more\n", reads-listed)
			break
		}
		listed++
		shown := *ev
		if shown.Path == "" {
			shown.Path = initNodes[ev.Nodeid]
		}
		fmt.Fprintf(bw, "  %s\n", Line(&shown))
	}
	return bw.Flush()
}
