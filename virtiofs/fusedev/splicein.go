package fusedev

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// Large WRITEs are taken from /dev/fuse by splicing, not read(2): the
// kernel then hands over references to the request's data pages instead
// of copying them into our buffer, the server reads only the 80 bytes of
// headers, and the data goes pipe -> file (one copy, into the host's page
// cache) instead of device -> buffer -> file (two). A spliced request
// costs two more system calls, so workers splice only while the mount is
// seeing large WRITEs: a WRITE of at least bulkWriteMin bytes, read or
// spliced, lets the next spliceCredit requests be spliced, and every
// other spliced request uses one up. The credit rides over the requests
// the kernel sends between a stream's WRITEs (a GETXATTR of
// security.capability before each one, for instance); a mount that stops
// writing returns to read(2) within spliceCredit requests.
//
// The kernel fails a request whose pages do not fit the pipe (and the
// client would wait for it forever), so splicing in needs a pipe with
// room for a max_write WRITE's pages and headers. A 1 MiB WRITE needs
// pipeSize, which only CAP_SYS_RESOURCE gets past fs.pipe-max-size (1 MiB
// by default), so a mount offers max_write no larger than its pipes hold
// (spliceableRequest): 512 KiB on default settings. Measured on default
// settings (fusebench, 256 MiB write + fsync, 6 rounds, busy 2-core
// machine): 1 MiB WRITEs read and copied gave 0.93x go-fuse (cold) and
// 0.96x (warm server); 512 KiB spliced 1.24x and 1.08x. Side by side, 5
// pairs of fresh `serve --no-tap` mounts, dd 512 MiB bs=1M conv=fsync:
// 512 KiB spliced over 1 MiB copied 0.99x-1.39x (median 1.24x), with
// --writeback 1.04x-2.4x (median 1.09x). Rejected: keeping 1 MiB
// requests and copying them (the numbers above).
//
// What a spliced 512 KiB WRITE costs the server in system calls (strace -c
// -f on `serve --mount`, dd 512 MiB bs=1M conv=fsync, 1024 WRITEs): 2
// splice, 1 read (the headers), 1 write (the reply), 1 fcntl (WriteFD's
// F_GETFL; gone since session 11: the handle knows it from its open
// flags, TestSplicedWriteSyscalls), and about 3.2 futex and 3.5 nanosleep (the runtime: worker
// hand-offs, spinning threads); since a serial writer's WRITEs keep the
// reader token (workers.go's handOffNow), 1 poll, about 1 futex and 2.5
// nanosleep. Where a fresh server's 512 MiB goes (perf record -g of the
// server, fresh mount per sample): its CPU is 150-190 ms of a 0.55-0.6 s
// sample, most of it the copy pipe -> host page cache (memcpy in
// copy_folio_from_iter_atomic, 50-60 ms when fast); in slow samples that
// same memcpy took 290 ms, the host faulting back in memory the balloon
// had reported free (bench/fusebench/memory.go), not a cost of ours. The
// fsync is 0.31-0.34 s for every server. Every WRITE is synchronous
// without the writeback cache (the client fills 512 KiB, waits for the
// reply), so the client's copy and ours never overlap. A fresh server's first 512 MiB made the
// same calls as its second on the same mount, plus 8 pipe2 (one a
// worker): the fresh/warm gap is not in the server's system calls.

// Session 10 (h-devwrite), fresh `serve --mount`, dd 512 MiB bs=1M then
// fsync timed apart, default settings, 2 CPUs, fresh mount per sample:
// write() phase ours 0.26-0.36 s (slow samples 0.38-0.74 s, server CPU
// 275-453 ms against 160-230), fsync 0.32-0.43 s; passthrough_hp 0.26-
// 0.54 s + 0.30-0.42 s (1 MiB WRITEs read(2) and pwrite64: its pipe
// cannot grow to its 1 MiB + 4 KiB buffer, so it never splices; writeback
// cache); go-fuse 0.32-1.16 s + 0.32-0.36 s (1 MiB WRITEs read(2) and
// pwrite64, no writeback cache); the host itself 0.10 s + 0.31 s. In
// ours' write() phase the 2 CPUs were 59-67% idle (perf record -a), and
// pinning server and dd to one CPU left it at 0.25-0.47 s: the phase is
// serial work (dd's copy into the FUSE page cache, then the server's
// pipe -> host page cache copy, 65 ms of its ~125 ms), not wake-up
// latency; only the writeback cache overlaps the two.
// Tried, not kept (session 10): max_write of the pipe's buffers less two
// (1016 KiB; readahead kept at 512 KiB so READs still splice), ~1.03x in
// 6 rounds. Session 11 A/B'd it properly with an option for it
// (fusedev.Options.WholePipeWrites, inSlots = pages + 2; commit d16b1e8,
// removed again after the A/B), fusebench
// -settings default, -size 512M, both variants mounted side by side in
// every round (tap, and tap with the option in fusebench's no-tap
// slot) with passthrough_hp, 6 alternating holds of 6 rounds (36
// rounds), and 6 holds of 10 for --writeback (60). 1016 KiB over 512
// KiB, within rounds, median [p25-p75]: write fresh 0.965x [0.93-1.01],
// write warm 0.961x [0.92-1.02], server CPU per fresh sample 0.235 s
// against 0.175 (dd's 1 MiB write()s become a 1016 KiB and an 8 KiB
// WRITE: still two round trips, and more server work); read 0.94x
// [0.48-2.20] (bimodal, READs stay 512 KiB); mixed writer 1.02x but
// the stat client's p99 under the writer 484 us against 357, 1.46x
// [1.07-1.57] worse (a larger WRITE holds its worker and a CPU longer);
// with --writeback, write fresh 1.01x [0.95-1.07], warm 1.00x [0.94-
// 1.07], mixed p99 1.02x [0.82-1.32] (18 rounds). Rows regress and none
// gains: requests stay at 512 KiB, and the option and its test
// (TestWholePipeWrites: 1016 KiB WRITEs from unaligned offsets, buffered,
// writeback and O_DIRECT, spliced and byte-exact) went with it.

// Session 12 (h-write), one cold 512 MiB dd bs=1M conv=fsync per server,
// default settings, 2 busy CPUs, server only (perf stat, strace -c -f,
// perf record -g in separate samples). Per WRITE: ours (512 KiB spliced,
// 1029 requests) 153 us server CPU, 3.8 context switches, 2 splice + 1
// read + 1 write + 2.1 futex + 1.05 nanosleep; of its perf samples 23%
// memcpy pipe -> page cache, 31% in context switches (sysmon's nanosleep
// 8%, parked Ms 3%, waiting in fuse_dev_do_read 3%). go-fuse (1 MiB read
// and pwrite64, plus a GETXATTR per WRITE) 885 us and 11.8 switches per
// 1 MiB, 58% copy_folio_from_iter (its read(2) copy). passthrough_hp
// (writeback, 1 MiB read + pwrite64) 424 us and 0.77 switches per 1 MiB.
// With --writeback ours took 194 us and 0.76 switches per 512 KiB, 24% of
// its samples in rwsem_spin_on_owner: two workers writing the same file
// at once spin on its inode lock (passthrough_hp 11%). Tried, not kept:
// GOMAXPROCS=1 for the server, 7 alternating pairs, wall new/old median
// 0.987 [0.844-1.026] (more nanosleep: 2.6 per WRITE). Same hold: go-fuse
// over ours 1.42x median [1.07-2.03], ours 0.582 s [0.568-0.691].

// bulkWriteMin is the WRITE size from which requests are spliced in.
const bulkWriteMin = 128 << 10

// spliceCredit is how many requests a large WRITE lets workers splice in.
const spliceCredit = 4

// inSlots is how many pipe buffers a WRITE of size bytes can take: one
// per data page, plus a partial page at each end and the headers.
func inSlots(size int) int { return size/unix.Getpagesize() + 4 }

// spliceableRequest is the largest request size (max_write, and
// max_pages in pages) whose WRITEs a pipe of the capacity this process
// gets can take whole, so that large WRITEs are spliced in and large
// READ replies spliced out instead of being copied through the server:
// fuse.MaxWrite where pipes grow to pipeSize, otherwise a power of two
// of pages that fits (512 KiB with fs.pipe-max-size at its default of
// 1 MiB, whose 256 buffers are four short of a 1 MiB WRITE's).
func spliceableRequest() int {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fuse.MaxWrite
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	got, err := growPipe(p[1])
	if err != nil {
		return fuse.MaxWrite
	}
	size := fuse.MaxWrite
	for size > bulkWriteMin && inSlots(size) > got/unix.Getpagesize() {
		size /= 2
	}
	if inSlots(size) > got/unix.Getpagesize() {
		return fuse.MaxWrite // pipes too small to splice anything large
	}
	return size
}

var errPipeRead = errors.New("fusedev: short read from the request pipe")

// bulkWrite reports whether req is a WRITE of at least bulkWriteMin bytes.
func bulkWrite(req []byte) bool {
	return len(req) >= writeDataOffset+bulkWriteMin &&
		binary.NativeEndian.Uint32(req[4:8]) == fuse.OpWrite
}

// openIn makes the request pipe, once; false when splicing in cannot be
// used (no pipe, or one too small).
func (s *splicer) openIn() bool {
	if s.in[0] >= 0 {
		return true
	}
	if s.inOff {
		return false
	}
	if err := unix.Pipe2(s.in[:], unix.O_CLOEXEC); err != nil {
		s.inOff = true
		return false
	}
	got, err := growPipe(s.in[1])
	if err != nil || got/unix.Getpagesize() < inSlots(s.maxRequest) {
		s.closeIn()
		s.inOff = true
		return false
	}
	return true
}

func (s *splicer) closeIn() {
	for i, fd := range s.in {
		if fd >= 0 {
			unix.Close(fd)
			s.in[i] = -1
		}
	}
}

// readRequest splices the next request into the request pipe and reads
// it into buf, except for a WRITE's data, which stays in the pipe: its
// length is pending. ok false means the pipe could not be used (nothing
// was taken from the device): read(2) the request instead.
func (s *splicer) readRequest(buf []byte) (n, pending int, ok bool, err error) {
	if !s.openIn() {
		return 0, 0, false, nil
	}
	k, err := unix.Splice(s.dev, nil, s.in[1], nil, len(buf), 0)
	if err != nil {
		return 0, 0, true, err
	}
	total := int(k)
	head := min(total, writeDataOffset)
	if err := s.readPipe(buf[:head]); err != nil {
		return 0, 0, true, err
	}
	if head == writeDataOffset && binary.NativeEndian.Uint32(buf[4:8]) == fuse.OpWrite &&
		int(binary.NativeEndian.Uint32(buf[0:4])) == total && total > head {
		return head, total - head, true, nil
	}
	if err := s.readPipe(buf[head:total]); err != nil {
		return 0, 0, true, err
	}
	return total, 0, true, nil
}

// readPipe fills b from the request pipe.
func (s *splicer) readPipe(b []byte) error {
	for len(b) > 0 {
		k, err := unix.Read(s.in[0], b)
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			s.closeIn()
			return errors.Join(errPipeRead, err)
		}
		b = b[k:]
	}
	return nil
}

// pendingWrite is a spliced-in WRITE's data, still in the request pipe
// (fuse.PendingWrite).
type pendingWrite struct {
	s       *splicer
	spliced *atomic.Uint64 // counts WRITEs spliced whole
	left    int
	buf     []byte // where Read puts the data: the request buffer's data area
}

func (p *pendingWrite) Len() int { return p.left }

// SpliceTo moves the data to fd at off. With --writeback, WRITEs to one
// file are served by several workers at once, which spin on its inode
// lock (rwsem_spin_on_owner, 24% of the server's samples on a cold 512
// MiB dd + fsync). Tried, not kept: one splice out at a time (a mutex
// here), 7 pairs, wall new/old median 1.22 [1.14-1.52], server CPU 408
// ms against 202: the overlap pays for the spinning, and blocked workers
// called up spares (fresh buffers zeroed: memclr 22% of samples).
//
// Tried, not kept (session 13, h-wbcap): at most 2 workers serving WRITEs
// to one inode (in workers.go's loop, around ServePending/ServeSplice: a
// buffered channel of 2 per bucket of 256 nodeid hashes, no allocation;
// a test through a writeback mount counted 10-26 WRITEs to one inode in
// service at once without it, 2 with it). fusebench -settings default
// -runs 2, builds alternating per run, 6 pairs, new/old of the runs'
// medians, median [p25-p75]: write with --writeback 0.89x [0.86-0.94],
// server CPU 1.23x [1.12-1.63]; write-warm with --writeback 1.02x
// [0.96-1.02]; without --writeback (WRITEs synchronous, the cap never
// waits) write 1.02x, write-warm 1.08x [0.97-1.11], mixed writer 1.02x
// [0.94-1.10], its p99 ratio 1.07x [0.99-1.24]: noise. perf record of
// the server, dd 512 MiB conv=fsync with --writeback: rwsem_spin_on_owner
// 13-18% -> 5-9% of samples, but runtime.memclrNoHeapPointers 1% -> 15%:
// workers waiting for the cap count as slow, so spares start with fresh
// buffers. With the waiters not counted as slow (no spares for them),
// dd 5 pairs wall 1.015x (range 0.99-1.03), CPU 0.96x (0.91-1.00), and
// rwsem_spin_on_owner back at 17% (on 2 CPUs two writers are an owner
// and a spinner, as without a cap); fusebench 12 pairs (writeback and
// passthrough_hp only): write 1.05x [0.99-1.13], over passthrough_hp
// 1.07x [0.99-1.13], write-warm 1.00x [0.98-1.03]: inside the noise, and
// a worker parked on the cap but counted free starts no spare, so two
// WRITEs held at a breakpoint could leave no worker to read the mount.
func (p *pendingWrite) SpliceTo(fd int, off int64, size int) (int, error) {
	moved := 0
	for moved < min(size, p.left) {
		k, err := unix.Splice(p.s.in[0], nil, fd, &off, min(size, p.left)-moved, unix.SPLICE_F_MOVE)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			p.left -= moved
			return moved, err
		}
		if k == 0 {
			break
		}
		moved += int(k)
	}
	p.left -= moved
	if moved == size {
		p.spliced.Add(1)
	}
	return moved, nil
}

// Read reads the data into the request buffer.
func (p *pendingWrite) Read(size int) ([][]byte, error) {
	if size > p.left || size > len(p.buf) {
		return nil, errPipeRead
	}
	if err := p.s.readPipe(p.buf[:size]); err != nil {
		p.left = 0
		return nil, err
	}
	p.left -= size
	return [][]byte{p.buf[:size]}, nil
}

// finish leaves the request pipe empty for the next request: data the
// server did not take (a WRITE it refused, a short write) is dropped with
// the pipe.
func (p *pendingWrite) finish() {
	if p.left > 0 {
		p.s.closeIn()
	}
	p.left = 0
}
