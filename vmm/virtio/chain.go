package virtio

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Chain is a descriptor chain popped from a Queue, resolved to host memory.
//
// Readable holds the device-readable buffers and Writable the
// device-writable ones, in chain order. Each element aliases guest memory
// and corresponds to exactly one descriptor (a buffer is split further only
// in the rare case that it crosses into a GPA-contiguous neighbouring
// region). Zero-length descriptors are accepted and contribute no element.
// The slices stay valid while the guest memory mapping does; the device must
// not keep them after completing the chain with AddUsed.
type Chain struct {
	// Head is the descriptor index to pass to Queue.AddUsed.
	Head uint16
	// Readable are the device-readable buffers.
	Readable [][]byte
	// Writable are the device-writable buffers.
	Writable [][]byte
	// ReadableLen is the total length of Readable.
	ReadableLen uint32
	// WritableLen is the total length of Writable.
	WritableLen uint32
}

func (c *Chain) reset(head uint16) {
	clear(c.Readable)
	clear(c.Writable)
	*c = Chain{Head: head, Readable: c.Readable[:0], Writable: c.Writable[:0]}
}

// Reader returns an io.Reader over the readable buffers.
func (c *Chain) Reader() *SliceReader { return NewSliceReader(c.Readable) }

// Writer returns an io.Writer over the writable buffers.
func (c *Chain) Writer() *SliceWriter { return NewSliceWriter(c.Writable) }

// desc is a decoded struct virtq_desc.
type desc struct {
	addr  uint64
	len   uint32
	flags uint16
	next  uint16
}

func putLE32(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }

// readDesc reads the descriptor at gpa. Descriptors in the main table are
// 16-byte aligned and never straddle regions; an indirect table may start
// anywhere, so a descriptor straddling two contiguous regions is gathered.
func readDesc(mem GuestMemory, gpa uint64) (desc, error) {
	b, err := mem.Slice(gpa, descSize)
	if err != nil {
		parts, err2 := mem.AppendSlices(nil, gpa, descSize)
		if err2 != nil {
			return desc{}, err
		}
		var buf [descSize]byte
		n := 0
		for _, p := range parts {
			n += copy(buf[n:], p)
		}
		b = buf[:]
	}
	return desc{
		addr:  binary.LittleEndian.Uint64(b[0:8]),
		len:   binary.LittleEndian.Uint32(b[8:12]),
		flags: binary.LittleEndian.Uint16(b[12:14]),
		next:  binary.LittleEndian.Uint16(b[14:16]),
	}, nil
}

// walk follows the chain starting at c.Head and fills c. It returns a
// non-empty reason when the chain is rejected, and fatal when the problem
// is with the queue itself (descriptor table not readable).
//
// Rules: indices below the table size; at most table-size descriptors per
// table (so loops are rejected); one indirect descriptor at most, which must
// not have NEXT, must have a non-zero length that is a multiple of 16, and
// may follow direct descriptors; a chain holds at most queue-size
// descriptors in all, direct ones and indirect table entries together (the
// spec forbids longer chains; the cap bounds the host work one available
// entry can cost);
// descriptors inside an indirect table must not be indirect; buffers must
// lie in guest memory without overflow; no readable buffer after a writable
// one; total length at most MaxChainBytes.
func (q *Queue) walk(mem GuestMemory, c *Chain) (reason string, fatal bool) {
	table, tableLen := q.desc, uint32(q.size)
	idx := uint32(c.Head)
	count := uint32(0)
	indirect, sawWrite := false, false
	var total uint64
	for {
		if idx >= tableLen {
			return fmt.Sprintf("descriptor index %d out of range (table of %d)", idx, tableLen), false
		}
		count++
		if count > tableLen {
			return fmt.Sprintf("chain longer than its table of %d descriptors (loop?)", tableLen), false
		}
		d, err := readDesc(mem, table+descSize*uint64(idx))
		if err != nil {
			if !indirect {
				return "reading descriptor table: " + err.Error(), true
			}
			return "reading indirect table: " + err.Error(), false
		}
		if d.flags&DescFIndirect != 0 {
			switch {
			case indirect:
				return "nested indirect descriptor", false
			case d.flags&DescFNext != 0:
				return "indirect descriptor with NEXT flag", false
			case d.len == 0 || d.len%descSize != 0:
				return fmt.Sprintf("indirect table length %d is not a non-zero multiple of %d", d.len, descSize), false
			case uint64(count-1)+uint64(d.len/descSize) > uint64(q.size):
				return fmt.Sprintf("indirect table of %d descriptors after %d direct ones exceeds the queue size %d",
					d.len/descSize, count-1, q.size), false
			}
			// The table is resolved like a buffer, so that the memory's
			// FirstUse sees it, into the spare room of c.Readable and
			// dropped again: AppendSlices into a nil list cost a heap
			// allocation per indirect chain, which is nearly every Linux
			// virtio-fs request (TestPopIntoIndirectAllocs), while a pooled
			// chain's list has room (and a new one's is grown once for the
			// buffers that follow).
			keep := len(c.Readable)
			parts, err := mem.AppendSlices(c.Readable, d.addr, uint64(d.len))
			clear(parts[keep:])
			c.Readable = parts[:keep]
			if err != nil {
				return "indirect table: " + err.Error(), false
			}
			indirect = true
			table, tableLen, idx, count = d.addr, d.len/descSize, 0, 0
			continue
		}
		write := d.flags&DescFWrite != 0
		if !write && sawWrite {
			return "device-readable descriptor after a device-writable one", false
		}
		sawWrite = sawWrite || write
		if d.len > 0 {
			total += uint64(d.len)
			if total > uint64(q.maxChainBytes) {
				return fmt.Sprintf("chain longer than %d bytes", q.maxChainBytes), false
			}
			if write {
				c.Writable, err = mem.AppendSlices(c.Writable, d.addr, uint64(d.len))
				c.WritableLen += d.len
			} else {
				c.Readable, err = mem.AppendSlices(c.Readable, d.addr, uint64(d.len))
				c.ReadableLen += d.len
			}
			if err != nil {
				return fmt.Sprintf("descriptor %d buffer: %v", idx, err), false
			}
		}
		if d.flags&DescFNext == 0 {
			return "", false
		}
		idx = uint32(d.next)
	}
}

// SliceReader is an io.Reader over a list of buffers, such as
// Chain.Readable. It does not modify the list.
type SliceReader struct {
	bufs [][]byte
	i    int // current buffer
	off  int // offset in bufs[i]
	n    int64
}

// NewSliceReader returns a reader over bufs; it does not copy them.
func NewSliceReader(bufs [][]byte) *SliceReader { return &SliceReader{bufs: bufs} }

// Read implements io.Reader.
func (r *SliceReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.i < len(r.bufs) {
		k := copy(p[n:], r.bufs[r.i][r.off:])
		n += k
		if r.off += k; r.off == len(r.bufs[r.i]) {
			r.i, r.off = r.i+1, 0
		}
	}
	r.n += int64(n)
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Len returns the number of unread bytes.
func (r *SliceReader) Len() int { return remaining(r.bufs, r.i, r.off) }

// Consumed returns the number of bytes read so far.
func (r *SliceReader) Consumed() int64 { return r.n }

// SliceWriter is an io.Writer over a list of buffers, such as
// Chain.Writable. Writing past the end fails with io.ErrShortWrite. It does
// not modify the list.
type SliceWriter struct {
	bufs [][]byte
	i    int
	off  int
	n    int64
}

// NewSliceWriter returns a writer into bufs; it does not copy them.
func NewSliceWriter(bufs [][]byte) *SliceWriter { return &SliceWriter{bufs: bufs} }

// Write implements io.Writer.
func (w *SliceWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) && w.i < len(w.bufs) {
		k := copy(w.bufs[w.i][w.off:], p[n:])
		n += k
		if w.off += k; w.off == len(w.bufs[w.i]) {
			w.i, w.off = w.i+1, 0
		}
	}
	w.n += int64(n)
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// Written returns the number of bytes written so far, the length to pass
// to Queue.AddUsed.
func (w *SliceWriter) Written() int64 { return w.n }

// Available returns the number of bytes that can still be written.
func (w *SliceWriter) Available() int { return remaining(w.bufs, w.i, w.off) }

func remaining(bufs [][]byte, i, off int) int {
	n := -off
	for _, b := range bufs[i:] {
		n += len(b)
	}
	return n
}
