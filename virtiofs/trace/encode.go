package trace

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON appends ev as one JSON object, byte for byte what
// encoding/json (with HTML escaping off) makes of an Event, without its
// reflection: a recorder encodes one object per served request. The test
// TestAppendJSONMatchesEncodingJSON holds the two together.
func appendJSON(b []byte, ev *Event) []byte {
	var e encoder
	return e.appendJSON(b, ev)
}

// encoder is appendJSON with memory: it formats the date and time of day
// of an event's wall time once per second, not once per event.
type encoder struct {
	sec  int64 // the Unix second prefix and zone are for
	loc  *time.Location
	ok   bool
	day  []byte // `,"wall":"2006-01-02T15:04:05`
	zone []byte // `Z"` or `+07:00"`
}

// appendJSON appends ev as the package's appendJSON does.
func (e *encoder) appendJSON(b []byte, ev *Event) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, ev.Seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, int64(ev.Time), 10)
	if !ev.Wall.IsZero() {
		b = e.appendWall(b, ev.Wall)
	}
	b = append(b, `,"op":`...)
	b = strconv.AppendUint(b, uint64(ev.Op), 10)
	b = append(b, `,"opname":`...)
	b = appendString(b, ev.OpName)
	b = appendUint(b, `,"unique":`, ev.Unique)
	b = appendUint(b, `,"nodeid":`, ev.Nodeid)
	b = appendNonEmpty(b, `,"path":`, ev.Path)
	b = appendNonEmpty(b, `,"name":`, ev.Name)
	b = appendNonEmpty(b, `,"newname":`, ev.NewName)
	b = appendUint(b, `,"off":`, ev.Offset)
	b = appendUint(b, `,"size":`, uint64(ev.Size))
	b = appendUint(b, `,"flags":`, uint64(ev.Flags))
	b = appendUint(b, `,"mode":`, uint64(ev.Mode))
	b = appendUint(b, `,"fh":`, ev.Fh)
	b = appendInt(b, `,"errno":`, int64(ev.Errno))
	b = appendInt(b, `,"bytes":`, int64(ev.Bytes))
	b = appendInt(b, `,"lat":`, int64(ev.Latency))
	if ev.Synthetic {
		b = append(b, `,"syn":true`...)
	}
	if ev.EOF {
		b = append(b, `,"eof":true`...)
	}
	b = appendUint(b, `,"newnodeid":`, ev.NewNodeid)
	b = appendNonEmpty(b, `,"drop":`, ev.Dropped)
	b = appendNonEmpty(b, `,"inj":`, ev.Injected)
	b = appendUint(b, `,"uid":`, uint64(ev.Uid))
	b = appendUint(b, `,"gid":`, uint64(ev.Gid))
	b = appendUint(b, `,"pid":`, uint64(ev.Pid))
	return append(b, '}')
}

func appendUint(b []byte, key string, v uint64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendUint(append(b, key...), v, 10)
}

func appendInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

func appendNonEmpty(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendWall appends the wall time as the package's appendWall does,
// reusing the date, time of day and zone formatted for the previous event
// when it fell in the same second. Zones with a fractional minute offset
// and years appendWall cannot print are left to it.
func (e *encoder) appendWall(b []byte, t time.Time) []byte {
	sec := t.Unix()
	if !e.ok || sec != e.sec || t.Location() != e.loc {
		_, off := t.Zone()
		if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 {
			e.ok = false
			return appendWall(b, t)
		}
		e.sec, e.loc, e.ok = sec, t.Location(), true
		e.day = t.AppendFormat(append(e.day[:0], `,"wall":"`...), "2006-01-02T15:04:05")
		e.zone = append(t.AppendFormat(e.zone[:0], "Z07:00"), '"')
	}
	b = append(b, e.day...)
	if ns := t.Nanosecond(); ns != 0 {
		var d [10]byte
		d[0] = '.'
		for i := 9; i > 0; i-- {
			d[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(d)
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return append(b, e.zone...)
}

// appendWall appends the wall time as time.Time.MarshalJSON does
// (RFC 3339 with nanoseconds); years it cannot print take that path.
func appendWall(b []byte, t time.Time) []byte {
	b = append(b, `,"wall":`...)
	if y := t.Year(); y < 0 || y > 9999 {
		return appendMarshaled(b, t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString quotes s. Plain printable ASCII is copied; anything else
// (quotes, backslashes, control bytes, non-ASCII) is left to encoding/json
// so every escape matches it exactly.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendMarshaled(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendMarshaled appends v encoded by encoding/json without HTML escaping.
func appendMarshaled(b []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return append(b, `null`...)
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
