package fusedev

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// READ replies are spliced when the filesystem can name a host descriptor
// for them (fuse.FDReader): the data goes file -> pipe -> /dev/fuse, and
// the kernel copies it once, into the client's pages, instead of twice
// (pread into our buffer, write from it). The device takes a reply in a
// single write, header first, and the header's length depends on how many
// bytes the file had, so each worker keeps two pipes, as go-fuse does:
// "data" receives the file's bytes, then "msg" receives the header followed
// by data's contents and goes to /dev/fuse in one splice.

// copyReadMax is the largest READ answered by copying rather than
// splicing: pread into the worker's reply buffer and one write of header
// and data, 3 system calls per READ as passthrough_hp makes, against 5 to
// splice (read, splice file -> pipe, write the header, splice pipe ->
// pipe, splice -> /dev/fuse). Below a few pages the copy costs less than
// the extra calls and pipe bookkeeping.
//
// Measured (issue 15, 2 CPUs, default settings, fs.pipe-max-size 1 MiB):
// 8 fio jobs of psync random reads (fadvise RANDOM) over 64 MiB files
// cached on the host, each sample on a fresh `serve --mount`, the same
// binary with copying switched by an environment variable for the
// experiment, variants alternating within rounds (ratio copy/splice,
// median [p25-p75], 10 rounds; 8 for 64 KiB):
//
//	4 KiB  IOPS 1.11x [1.01-1.24], server CPU per READ 0.86x [0.83-0.89]
//	       (again: splice/copy 0.935x [0.88-0.97], CPU 1.18x [1.15-1.22])
//	16 KiB IOPS 1.05x [0.97-1.18], CPU 0.91x [0.86-0.94]
//	32 KiB IOPS 0.98x [0.92-1.08], CPU 1.04x [1.00-1.11]
//	64 KiB IOPS 1.01x [0.72-1.46], CPU 1.09x [0.97-1.42]
//
// so copying wins up to 16 KiB and loses CPU from 32 KiB on. In the same
// rounds passthrough_hp made 1.13x [0.94-1.19] our copied 4 KiB IOPS
// (1.32x [1.24-1.45] the spliced ones), its CPU per READ 0.93x ours.
// fusebench's par-randread row with this (default settings, 8 rounds,
// machine shared): 0.86x [0.84-0.89] passthrough_hp (0.83x [0.73-0.88]
// in the last session run), server CPU 0.61 s against its 0.58 s per
// sample (1.05x; 1.15x spliced). What is left is the second CPU: with
// one reader token a READ is read only after the previous one's reply.
const copyReadMax = 16 << 10

// The read-warm row (512 MiB in 1 MiB reads, a server mounted for the
// whole run, drop_caches before each sample, so the host reads the disk)
// spread 195% with krunbench at 0.96x passthrough_hp. Both servers side
// by side, 6 alternating samples, default settings: ours 0.19-0.41 s,
// passthrough_hp 0.27-0.88 s, ours/passthrough_hp 1.24x median
// (0.68-3.92x); host file already cached: 10 pairs, ours faster in each
// (1.15-2.35x). The slow samples of either server are those where the
// server's own CPU doubles (ours 14 -> 32 ticks, passthrough_hp 15 ->
// 103) for the same bytes and requests: the page allocations of the
// host's readahead, made in the server's splice or pread, paying for
// memory the balloon had reported free (bench/fusebench/memory.go). A
// cost of the machine that lands on whichever server reads then, not a
// loss of this READ path.

// pipeSize is the capacity asked for each pipe: a max_pages READ plus the
// header and unaligned edges, rounded up to a power of two as the kernel
// does. Above /proc/sys/fs/pipe-max-size (1 MiB by default) it needs
// CAP_SYS_RESOURCE; without it the pipes get that maximum, which holds the
// kernel's usual 128 KiB readahead READs, and only READs that fit are
// spliced.
const pipeSize = 2 * fuse.MaxWrite

// pipeSlack is how many pages a reply may need beyond its size in pages:
// the header's own buffer and a partial page at each end.
const pipeSlack = 3

// maxDeviceFailures turns splicing off for a mount after this many replies
// /dev/fuse refused for reasons other than a vanished request.
const maxDeviceFailures = 3

var (
	errTooLarge  = errors.New("fusedev: READ larger than the splice pipes")
	errSmallRead = errors.New("fusedev: READ small enough to copy")
	errNoSplice  = errors.New("fusedev: splicing unavailable")
	errShortPipe = errors.New("fusedev: pipe accepted less than it holds")
)

// splicer is one worker's fuse.ReadSplicer.
type splicer struct {
	dev      int
	data     [2]int // read end, write end; -1 when not open
	msg      [2]int
	capacity int // bytes each pipe can hold; 0 until the pipes are open
	failures *atomic.Int32
	off      bool
	hdr      [fuse.OutHeaderSize]byte
	// in is the request pipe (splicein.go); inOff once it proved unusable.
	in    [2]int
	inOff bool
	// maxRequest is the mount's largest WRITE (Mount.maxRequest): the
	// request pipe must hold one whole.
	maxRequest int
}

func newSplicer(dev int, failures *atomic.Int32, maxRequest int) *splicer {
	return &splicer{dev: dev, data: [2]int{-1, -1}, msg: [2]int{-1, -1}, in: [2]int{-1, -1},
		failures: failures, maxRequest: maxRequest}
}

// open makes the two pipes, once.
func (s *splicer) open() error {
	if s.capacity > 0 {
		return nil
	}
	if s.off {
		return errNoSplice
	}
	capacity := 0
	for _, p := range []*[2]int{&s.data, &s.msg} {
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			s.close()
			s.off = true
			return err
		}
		got, err := growPipe(p[1])
		if err != nil {
			s.close()
			s.off = true
			return err
		}
		if capacity == 0 || got < capacity {
			capacity = got
		}
	}
	s.capacity = capacity
	return nil
}

// growPipe asks for pipeSize, then for the unprivileged maximum (1 MiB by
// default), and returns the capacity the pipe ended up with.
func growPipe(fd int) (int, error) {
	for _, size := range []int{pipeSize, pipeSize / 2} {
		if got, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size); err == nil {
			return got, nil
		}
	}
	return unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
}

// close releases the pipes; the next splice opens new ones.
func (s *splicer) close() {
	for _, p := range []*[2]int{&s.data, &s.msg} {
		for i, fd := range p {
			if fd >= 0 {
				unix.Close(fd)
				p[i] = -1
			}
		}
	}
	s.capacity = 0
}

// fits reports whether a reply of size data bytes fits the pipes without
// ever blocking on them (nobody else reads them).
func (s *splicer) fits(size int) bool {
	page := unix.Getpagesize()
	return (size+page-1)/page+pipeSlack <= s.capacity/page
}

// SpliceRead implements fuse.ReadSplicer.
func (s *splicer) SpliceRead(unique uint64, fd int, off int64, size int) (int, error) {
	if s.failures.Load() >= maxDeviceFailures {
		return 0, errNoSplice
	}
	if size <= copyReadMax {
		return 0, errSmallRead
	}
	if err := s.open(); err != nil {
		return 0, err
	}
	if !s.fits(size) {
		return 0, errTooLarge
	}
	n := 0
	for n < size {
		k, err := unix.Splice(fd, &off, s.data[1], nil, size-n, unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if n > 0 {
				s.close()
			}
			return 0, err
		}
		if k == 0 {
			break
		}
		n += int(k)
	}
	total := fuse.OutHeaderSize + n
	binary.NativeEndian.PutUint32(s.hdr[0:4], uint32(total))
	binary.NativeEndian.PutUint32(s.hdr[4:8], 0)
	binary.NativeEndian.PutUint64(s.hdr[8:16], unique)
	if w, err := unix.Write(s.msg[1], s.hdr[:]); err != nil || w != len(s.hdr) {
		s.close()
		return 0, errors.Join(errShortPipe, err)
	}
	for moved := 0; moved < n; {
		k, err := unix.Splice(s.data[0], nil, s.msg[1], nil, n-moved, unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			s.close()
			return 0, errors.Join(errShortPipe, err)
		}
		moved += int(k)
	}
	return n, s.send(total)
}

// send moves the assembled reply to /dev/fuse. The device takes it whole or
// not at all; ENOENT means the request was interrupted and forgotten, which
// counts as sent, as for a written reply. Any other refusal empties the
// pipes and reports an error, so the server answers by copying instead.
func (s *splicer) send(total int) error {
	for {
		k, err := unix.Splice(s.msg[0], nil, s.dev, nil, total, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == nil && int(k) == total:
			return nil
		case err == unix.ENOENT || err == unix.ENODEV:
			s.drainOrClose()
			return nil
		}
		s.close()
		s.failures.Add(1)
		if err == nil {
			err = errShortPipe
		}
		return err
	}
}

// drainOrClose leaves the pipes empty for the next reply (TIOCINQ is
// FIONREAD: the bytes a pipe holds).
func (s *splicer) drainOrClose() {
	if n, err := unix.IoctlGetInt(s.msg[0], unix.TIOCINQ); err != nil || n != 0 {
		s.close()
	}
}
