package recording

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

// Writer writes a recording through a buffer. It is safe for concurrent
// use; Close (or Flush) writes the buffer out, and WithFlushAfter makes it
// stream: records reach the file within a bounded delay, so a writer that
// is killed loses at most that much (and the file, whose records are whole
// lines, still reads; see Reader.Truncated).
type Writer struct {
	mu    sync.Mutex
	bw    *bufio.Writer
	enc   *json.Encoder
	start time.Time
	now   func() time.Time
	n     uint64
	err   error

	// flushAfter > 0: a record buffered with no flush pending schedules
	// one that far ahead (pending is that flush).
	flushAfter time.Duration
	pending    *time.Timer
	closed     bool
}

// WriterOption configures a Writer.
type WriterOption func(*Writer)

// WithClock makes the writer stamp records with now instead of time.Now.
func WithClock(now func() time.Time) WriterOption {
	return func(w *Writer) { w.now = now }
}

// WithFlushAfter makes the writer stream: a buffered record is written out
// at most d after it was recorded (zero, the default: only Flush and Close
// write the buffer out). A busy writer still writes whole buffers as they
// fill.
func WithFlushAfter(d time.Duration) WriterOption {
	return func(w *Writer) { w.flushAfter = d }
}

// NewWriter writes h as the first line of a recording to w and returns a
// writer for its records. A zero h.Version or h.Created is filled in
// (Version, the current time). Close flushes; w itself is left open.
func NewWriter(w io.Writer, h Header, opts ...WriterOption) (*Writer, error) {
	rw := &Writer{bw: bufio.NewWriterSize(w, 64<<10), now: time.Now}
	for _, o := range opts {
		o(rw)
	}
	rw.enc = json.NewEncoder(rw.bw)
	rw.enc.SetEscapeHTML(false)
	if h.Version == 0 {
		h.Version = Version
	}
	if h.Created.IsZero() {
		h.Created = rw.now()
	}
	rw.start = h.Created
	if err := rw.enc.Encode(h); err != nil {
		return nil, err
	}
	if rw.flushAfter > 0 {
		// The header is on disk at once: a recording killed before its
		// first flush is still a recording.
		if err := rw.bw.Flush(); err != nil {
			return nil, err
		}
	}
	return rw, nil
}

// Start is the header's creation time; records are stamped relative to it.
func (w *Writer) Start() time.Time { return w.start }

// Since is the time elapsed since Start, the T of a record written now.
func (w *Writer) Since() time.Duration { return max(w.now().Sub(w.start), 0) }

// WriteRecord appends rec as it is, after validating it. After the first
// write error every call returns it.
func (w *Writer) WriteRecord(rec Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	if w.err = w.enc.Encode(rec); w.err == nil {
		w.n++
		w.scheduleFlushLocked()
	}
	return w.err
}

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("recording: writer closed")

// scheduleFlushLocked arms the streaming flush, if the writer streams and
// none is pending.
func (w *Writer) scheduleFlushLocked() {
	if w.flushAfter <= 0 || w.pending != nil || w.bw.Buffered() == 0 {
		return
	}
	w.pending = time.AfterFunc(w.flushAfter, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.pending = nil
		if w.err == nil && !w.closed {
			w.err = w.bw.Flush()
		}
	})
}

func (w *Writer) stamp(rec Record) error {
	rec.T = w.Since()
	return w.WriteRecord(rec)
}

// Console records output of the guest, stamped now. b is copied.
func (w *Writer) Console(b []byte) error {
	return w.stamp(Record{Kind: KindConsole, Data: append([]byte(nil), b...)})
}

// Input records input of the user to the guest, stamped now. b is copied.
func (w *Writer) Input(b []byte) error {
	return w.stamp(Record{Kind: KindInput, Data: append([]byte(nil), b...)})
}

// Event records a FUSE request, stamped now.
func (w *Writer) Event(ev trace.Event) error {
	return w.stamp(Record{Kind: KindEvent, Event: &ev})
}

// Milestone records a boot milestone, stamped now.
func (w *Writer) Milestone(m Milestone) error {
	return w.stamp(Record{Kind: KindMilestone, Milestone: &m})
}

// Status records a state change, stamped now.
func (w *Writer) Status(s Status) error {
	return w.stamp(Record{Kind: KindStatus, Status: &s})
}

// Resize records a console resize, stamped now.
func (w *Writer) Resize(cols, rows int) error {
	return w.stamp(Record{Kind: KindResize, Resize: &Resize{Cols: cols, Rows: rows}})
}

// Written is how many records were written.
func (w *Writer) Written() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Flush writes buffered records out.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.err = w.bw.Flush()
	return w.err
}

// Close flushes and stops the streaming flush; later writes return
// ErrClosed. It does not close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending != nil {
		w.pending.Stop()
		w.pending = nil
	}
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}
