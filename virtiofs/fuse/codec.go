package fuse

import (
	"bytes"
	"errors"
)

// Decoding errors. A request that fails to decode gets an error reply when
// its header could be read, and is dropped with the reason otherwise.
var (
	ErrShortRequest = errors.New("fuse: request shorter than its header or arguments")
	ErrLyingLength  = errors.New("fuse: header length disagrees with the request's buffers")
	ErrTooLarge     = errors.New("fuse: request larger than the negotiated maximum")
	ErrNoTerminator = errors.New("fuse: name without NUL terminator")
	ErrShortReply   = errors.New("fuse: reply buffers too small for the reply header")
)

// reader walks one request held in a list of byte slices that may be split
// at any boundary (virtqueue descriptors need not match struct boundaries).
// Fixed-size pieces that straddle two slices are gathered into scratch.
type reader struct {
	bufs    [][]byte
	left    int // bytes still readable (bounded by the header's length)
	scratch []byte
	// restList backs rest's list, kept across requests (the reader lives
	// in the pooled scratch): a WRITE's list grown anew by append cost 5
	// allocations for 32 pages of data (TestGuestRequestAllocs).
	restList [][]byte
}

func (r *reader) reset(bufs [][]byte, scratch []byte) {
	r.bufs = bufs
	r.left = 0
	for _, b := range bufs {
		r.left += len(b)
	}
	r.scratch = scratch[:0]
}

// limit shrinks the readable length to n bytes.
func (r *reader) limit(n int) { r.left = min(r.left, n) }

// dropSpent takes the buffers earlier reads used up off the front, so
// the next read starts in the buffer that holds its first byte.
func (r *reader) dropSpent() {
	for len(r.bufs) > 0 && len(r.bufs[0]) == 0 {
		r.bufs = r.bufs[1:]
	}
}

// next returns the following n bytes as one contiguous slice.
func (r *reader) next(n int) ([]byte, bool) {
	if n > r.left {
		return nil, false
	}
	r.dropSpent()
	if n == 0 {
		return nil, true
	}
	if len(r.bufs[0]) >= n {
		b := r.bufs[0][:n]
		r.bufs[0] = r.bufs[0][n:]
		r.left -= n
		return b, true
	}
	start := len(r.scratch)
	want := n
	for want > 0 {
		b := r.bufs[0]
		k := min(len(b), want)
		r.scratch = append(r.scratch, b[:k]...)
		r.bufs[0] = b[k:]
		if len(r.bufs[0]) == 0 {
			r.bufs = r.bufs[1:]
		}
		want -= k
	}
	r.left -= n
	return r.scratch[start : start+n], true
}

// cstring reads a NUL-terminated string of at most max bytes.
func (r *reader) cstring(max int) (string, error) {
	// Linux's virtio-fs driver sends the header in a buffer of its own
	// and the arguments in the next, so a LOOKUP's or UNLINK's name
	// starts a buffer; with the spent header buffer still first every
	// such name took the byte-by-byte loop below and two allocations
	// (the gathered bytes, then the string) instead of one.
	r.dropSpent()
	// The usual case, the whole string in the current buffer, copies
	// once, straight into the string.
	if r.left > 0 && len(r.bufs) > 0 {
		b := r.bufs[0]
		if len(b) > r.left {
			b = b[:r.left]
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			if i > max {
				return "", ErrTooLarge
			}
			r.bufs[0] = r.bufs[0][i+1:]
			r.left -= i + 1
			return string(b[:i]), nil
		}
	}
	var out []byte
	for r.left > 0 && len(r.bufs) > 0 {
		b := r.bufs[0]
		if len(b) > r.left {
			b = b[:r.left]
		}
		for i, c := range b {
			if c == 0 {
				out = append(out, b[:i]...)
				r.bufs[0] = r.bufs[0][i+1:]
				r.left -= i + 1
				if len(out) > max {
					return "", ErrTooLarge
				}
				return string(out), nil
			}
		}
		out = append(out, b...)
		if len(out) > max {
			return "", ErrTooLarge
		}
		r.left -= len(b)
		r.bufs = r.bufs[1:]
	}
	return "", ErrNoTerminator
}

// rest returns the remaining bytes (at most n) as slices, without copying.
// The list is valid until the next call.
func (r *reader) rest(n int) ([][]byte, int) {
	n = min(n, r.left)
	clear(r.restList[:cap(r.restList)])
	out := r.restList[:0]
	got := 0
	for _, b := range r.bufs {
		if got == n {
			break
		}
		k := min(len(b), n-got)
		if k > 0 {
			out = append(out, b[:k])
			got += k
		}
	}
	r.restList = out[:0]
	return out, got
}

// decodeArg reads a fixed wire struct.
func decodeArg[T any](r *reader) (T, bool) {
	b, ok := r.next(sizeOf[T]())
	if !ok {
		var zero T
		return zero, false
	}
	return fromBytes[T](b), true
}

// writer fills a reply into the device-writable buffers of a request. The
// first OutHeaderSize bytes are reserved for the header, written last.
type writer struct {
	bufs  [][]byte
	total int // capacity of bufs
	n     int // bytes written, header included
	// win backs window's list, kept across requests (the writer lives in
	// the pooled scratch): a new list was one allocation per READ.
	win [][]byte
}

func (w *writer) reset(bufs [][]byte) {
	w.bufs = bufs
	w.total = 0
	for _, b := range bufs {
		w.total += len(b)
	}
	w.n = OutHeaderSize
}

func (w *writer) room() int { return w.total - w.n }

// writeAt copies p at absolute reply offset off.
func (w *writer) writeAt(off int, p []byte) {
	for _, b := range w.bufs {
		if len(p) == 0 {
			return
		}
		if off >= len(b) {
			off -= len(b)
			continue
		}
		k := copy(b[off:], p)
		p = p[k:]
		off = 0
	}
}

// put appends p to the reply; it reports false when p does not fit.
func (w *writer) put(p []byte) bool {
	if len(p) > w.room() {
		return false
	}
	w.writeAt(w.n, p)
	w.n += len(p)
	return true
}

// window returns the writable buffers from the current position, at most
// n bytes, for handlers that fill data in place (READ). The list is
// valid until the next call.
func (w *writer) window(n int) [][]byte {
	n = min(n, w.room())
	off := w.n
	clear(w.win[:cap(w.win)])
	out := w.win[:0]
	for _, b := range w.bufs {
		if n == 0 {
			break
		}
		if off >= len(b) {
			off -= len(b)
			continue
		}
		s := b[off:]
		off = 0
		k := min(len(s), n)
		out = append(out, s[:k])
		n -= k
	}
	w.win = out[:0]
	return out
}

// finish writes the header and returns the reply length.
func (w *writer) finish(unique uint64, errno Errno) int {
	if errno != 0 {
		w.n = OutHeaderSize
	}
	h := OutHeader{Len: uint32(w.n), Error: -int32(errno), Unique: unique}
	w.writeAt(0, asBytes(&h))
	return w.n
}
