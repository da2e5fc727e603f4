package fuse_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// fakePending stands in for fusedev's request pipe, which needs
// /dev/fuse; the real path is TestBulkWrites in virtiofs/fusedev.
type fakePending struct {
	data    []byte
	spliced []byte // what SpliceTo moved
	fd      int
	off     int64
	failN   int // SpliceTo moves this many bytes, then fails (when > 0)
}

func (p *fakePending) Len() int { return len(p.data) }

func (p *fakePending) SpliceTo(fd int, off int64, size int) (int, error) {
	p.fd, p.off = fd, off
	n := min(size, len(p.data))
	if p.failN > 0 {
		n = min(n, p.failN-1)
		p.spliced = append(p.spliced, p.data[:n]...)
		p.data = p.data[n:]
		return n, syscall.ENOSPC
	}
	p.spliced = append(p.spliced, p.data[:n]...)
	p.data = p.data[n:]
	return n, nil
}

func (p *fakePending) Read(size int) ([][]byte, error) {
	if size > len(p.data) {
		return nil, errors.New("short")
	}
	b := p.data[:size]
	p.data = p.data[size:]
	return [][]byte{b}, nil
}

// fdFS is memFS that names a descriptor for WRITEs to nodeid 5.
type fdFS struct {
	*memFS
	fd       int
	released int
}

func (f *fdFS) WriteFD(r *fuse.Request, nodeid uint64, in *fuse.WriteIn) (int, func(), fuse.Errno) {
	if nodeid != 5 {
		return -1, nil, 0
	}
	return f.fd, func() { f.released++ }, 0
}

func servePending(t *testing.T, s *fuse.Server, head []byte, pw fuse.PendingWrite) (fuse.OutHeader, fuse.WriteOut) {
	t.Helper()
	out := make([]byte, 4096)
	n, sent := s.ServePending([][]byte{head}, [][]byte{out}, nil, pw)
	if !sent {
		t.Fatal("no reply")
	}
	var h fuse.OutHeader
	var wo fuse.WriteOut
	r := bytes.NewReader(out[:n])
	binary.Read(r, binary.LittleEndian, &h)
	binary.Read(r, binary.LittleEndian, &wo)
	return h, wo
}

func TestServePendingWrite(t *testing.T) {
	mem := newMemFS()
	fs := &fdFS{memFS: mem, fd: 42}
	s := fuse.NewServer(fs, fuse.Options{})
	if r := serve(t, s, [][]byte{initIn(7, 37, 0xffffffff)}); r.hdr.Error != 0 {
		t.Fatalf("INIT: %d", r.hdr.Error)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	// head is the header and fuse_write_in of a WRITE whose data the
	// transport holds: the header's length counts the data.
	head := func(nodeid uint64, size, claimed int) []byte {
		req := request(fuse.OpWrite, nodeid, fuse.WriteIn{Fh: 1, Offset: 4096, Size: uint32(size)})
		binary.LittleEndian.PutUint32(req[0:4], uint32(len(req)+claimed))
		return req
	}

	t.Run("spliced to the descriptor", func(t *testing.T) {
		pw := &fakePending{data: bytes.Clone(data)}
		h, wo := servePending(t, s, head(5, len(data), len(data)), pw)
		if h.Error != 0 || wo.Size != uint32(len(data)) || !bytes.Equal(pw.spliced, data) || pw.fd != 42 || pw.off != 4096 {
			t.Fatalf("error %d, size %d, spliced %d bytes to fd %d at %d", h.Error, wo.Size, len(pw.spliced), pw.fd, pw.off)
		}
		if fs.released != 1 {
			t.Fatalf("descriptor released %d times", fs.released)
		}
	})
	t.Run("read when there is no descriptor", func(t *testing.T) {
		pw := &fakePending{data: bytes.Clone(data)}
		h, wo := servePending(t, s, head(6, len(data), len(data)), pw)
		if h.Error != 0 || wo.Size != uint32(len(data)) || !bytes.Equal(mem.written[len(mem.written)-1], data) || pw.spliced != nil {
			t.Fatalf("error %d, size %d", h.Error, wo.Size)
		}
	})
	t.Run("short splice reports what the file took", func(t *testing.T) {
		pw := &fakePending{data: bytes.Clone(data), failN: 1001}
		h, wo := servePending(t, s, head(5, len(data), len(data)), pw)
		if h.Error != 0 || wo.Size != 1000 {
			t.Fatalf("error %d, size %d", h.Error, wo.Size)
		}
		pw = &fakePending{data: bytes.Clone(data), failN: 1}
		if h, _ = servePending(t, s, head(5, len(data), len(data)), pw); h.Error != -int32(syscall.ENOSPC) {
			t.Fatalf("nothing written: error %d, want ENOSPC", h.Error)
		}
	})
	t.Run("lengths that disagree", func(t *testing.T) {
		for _, c := range []struct{ size, claimed, pending int }{
			{len(data), len(data), len(data) - 1}, // header claims more than is pending
			{len(data) - 1, len(data), len(data)}, // fuse_write_in.size short of the data
			{len(data), len(data) + 1, len(data)},
		} {
			pw := &fakePending{data: bytes.Clone(data[:c.pending])}
			if h, _ := servePending(t, s, head(5, c.size, c.claimed), pw); h.Error != -int32(syscall.EINVAL) {
				t.Fatalf("%+v: error %d, want EINVAL", c, h.Error)
			}
		}
	})
	t.Run("only a WRITE can be pending", func(t *testing.T) {
		req := request(fuse.OpGetattr, 5, fuse.GetAttrIn{})
		binary.LittleEndian.PutUint32(req[0:4], uint32(len(req)+10))
		pw := &fakePending{data: make([]byte, 10)}
		if h, _ := servePending(t, s, req, pw); h.Error != -int32(syscall.EINVAL) {
			t.Fatalf("GETATTR with pending data: error %d, want EINVAL", h.Error)
		}
	})
}
