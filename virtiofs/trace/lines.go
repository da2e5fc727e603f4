package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// LineReader reads JSON lines, the format of both a trace (Reader) and a
// session recording (session/recording, which reads its header line with
// Line and its records with Decode): blank lines are skipped, a malformed
// complete line is an error naming its line number, and a last line cut
// short (a writer that died mid-line) ends the stream quietly; see
// Truncated.
type LineReader struct {
	br        *bufio.Reader
	what      string // the errors' prefix: "trace", "recording"
	line      int
	truncated bool
}

// NewLineReader returns a reader of JSON lines from r whose errors start
// with what.
func NewLineReader(r io.Reader, what string) *LineReader {
	return &LineReader{br: bufio.NewReaderSize(r, 64<<10), what: what}
}

// Line returns the next non-blank line, trimmed, or io.EOF at the end;
// last is set when the line was not ended by a newline.
func (r *LineReader) Line() (line []byte, last bool, err error) {
	for {
		b, err := r.br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, err
		}
		last := err != nil
		if len(b) == 0 && last {
			return nil, false, io.EOF
		}
		r.line++
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			if last {
				return nil, false, io.EOF
			}
			continue
		}
		return b, last, nil
	}
}

// Decode unmarshals the next line into v. It returns io.EOF at the end,
// and also for a last line cut short (then Truncated reports true).
func (r *LineReader) Decode(v any) error {
	b, last, err := r.Line()
	if err != nil {
		return err
	}
	if jerr := json.Unmarshal(b, v); jerr != nil {
		if last {
			r.truncated = true
			return io.EOF
		}
		return fmt.Errorf("%s: line %d: %w", r.what, r.line, jerr)
	}
	return nil
}

// Truncated reports whether the input ended in a partial line that was
// skipped.
func (r *LineReader) Truncated() bool { return r.truncated }
