package recording

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

// ErrHeader reports input that does not start with a recording header.
var ErrHeader = errors.New("recording: not a recording (no header line)")

// Reader reads a recording. A last line cut short ends the stream quietly;
// see Truncated.
type Reader struct {
	lines *trace.LineReader
	h     Header
}

// NewReader reads the header of a recording from r.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{lines: trace.NewLineReader(r, "recording")}
	b, _, err := rd.lines.Line()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrHeader
		}
		return nil, err
	}
	h, ok := ParseHeader(b)
	if !ok {
		return nil, ErrHeader
	}
	if h.Version > Version {
		return nil, fmt.Errorf("recording: format version %d is newer than this krunbench (%d)", h.Version, Version)
	}
	rd.h = h
	return rd, nil
}

// ParseHeader parses line as a recording header; ok is false when it is
// not one (a trace JSON line, say).
func ParseHeader(line []byte) (h Header, ok bool) {
	var probe struct {
		Version *int    `json:"version"`
		Created *string `json:"created"`
	}
	if json.Unmarshal(bytes.TrimSpace(line), &probe) != nil || probe.Version == nil || probe.Created == nil {
		return Header{}, false
	}
	if json.Unmarshal(line, &h) != nil || h.Version < 1 {
		return Header{}, false
	}
	return h, true
}

// Header is the recording's header.
func (r *Reader) Header() Header { return r.h }

// Next returns the next record, or io.EOF at the end. Blank lines are
// skipped; a malformed complete line is an error naming its line number.
func (r *Reader) Next() (Record, error) {
	var rec Record
	if err := r.lines.Decode(&rec); err != nil {
		return Record{}, err
	}
	if rec.Kind == KindMilestone && rec.Milestone.At == 0 {
		rec.Milestone.At = rec.T
	}
	return rec, nil
}

// Truncated reports whether the input ended in a partial line that was
// skipped.
func (r *Reader) Truncated() bool { return r.lines.Truncated() }

// ReadAll reads a whole recording, tolerating a truncated last line.
func ReadAll(r io.Reader) (Header, []Record, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Header{}, nil, err
	}
	var recs []Record
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rd.h, recs, nil
		}
		if err != nil {
			return rd.h, recs, err
		}
		recs = append(recs, rec)
	}
}
