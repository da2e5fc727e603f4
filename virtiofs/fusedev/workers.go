package fusedev

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// handOffAfter is how long a worker serves a request before it lets
// another worker read the next one: longer than a create or a cached
// 128 KiB READ on the host (50 us still handed over one create in ten),
// short next to a READ that waits for the disk.
const handOffAfter = 200 * time.Microsecond

// slowRequest reports whether a request belongs to a class that is slow
// on the host by nature: a large WRITE (read whole, or spliced with
// pending bytes still in the pipe), FSYNC and FSYNCDIR (wait for the
// disk), FALLOCATE and COPY_FILE_RANGE (move or reserve extents), SETLKW
// (waits for another lock holder, possibly forever). Its worker hands the
// reader token on before serving it rather than handOffAfter later:
// otherwise every such request kept the next one in /dev/fuse waiting
// for 200 us, so a queue of N fsyncs from parallel writers delayed a
// stat or access() queued behind them by N x 200 us however many workers
// were idle (issue 15's stress run: 15 access() calls in 60 s).
func slowRequest(req []byte, pending int) bool {
	if pending >= bulkWriteMin || len(req) < fuse.InHeaderSize {
		return pending >= bulkWriteMin
	}
	switch binary.NativeEndian.Uint32(req[4:8]) {
	case fuse.OpFsync, fuse.OpFsyncdir, fuse.OpFallocate, fuse.OpCopyFileRange, fuse.OpSetlkw:
		return true
	case fuse.OpWrite:
		return bulkWrite(req)
	}
	return false
}

// freeWorkers is how many workers spare keeps out of slow requests.
const freeWorkers = 2

// maxWorkersFloor is the least maxWorkers: how many workers may be live
// at once when slow requests call for spares (virtiofsd's default thread
// pool is 64 too).
const maxWorkersFloor = 64

// Slow requests and spare workers.
//
// Workers bounds how many requests are in service, but a class of slow
// requests (slowRequest: large WRITEs, fsyncs, ...) could take every
// worker for as long as the host's disk liked, and every other request
// then waited in /dev/fuse behind them: a stat, an access() or a lookup
// that the host answers in microseconds took as long as an fsync under
// a writeback storm (issue 15: 15 access() calls in 60 s under 47
// stressors, against 5296 on ext4). So a worker that reads a slow
// request hands its reader token on at once and, when that leaves fewer
// than freeWorkers workers outside slow requests, starts a spare; extra
// workers stop again once slow requests leave enough free. Up to
// maxWorkers are live; past that, slow requests queue as before.
//
// A stat beside one large sequential writer (issue 15's mixed case, 2
// CPUs) is not held up by the server itself: the server's own time for
// the small client's LOOKUPs stays near 50 us at p99 under the writer
// (the trace's latencies), while the client's p99 grows to 0.5-2 ms. In
// the slowest 1% of calls about half the time passes before the request
// reaches the server and half after its reply: the waits for a CPU, once
// for the thread that reads the request and once for the client its
// reply wakes, while the writer, the thread serving its WRITE and the
// host's flusher fill both CPUs. Tried and rejected: serving slow
// requests at nice 10 on their own thread cut that p99 by 14-28% but the
// writer lost 15-25% of its throughput, and the server would yield to
// every other process on a shared machine.

// Workers and readers.
//
// A worker reads a request from /dev/fuse and serves it itself, then reads
// the next, without waking any other thread: a serial client (one process
// creating, statting or reading files) is served by one thread that
// sleeps in read(2) between requests, as a single-threaded server would.
// Only Readers workers hold a reader token; the others wait for one as
// parked goroutines. A worker hands its token on when a request takes
// longer than handOffAfter (a cold READ, an fsync, a lookup on a slow
// disk), so a parked worker reads the next request and up to Workers are
// in service at once: the kernel's parallel readahead READs and parallel
// clients still overlap.
//
// Why not Workers threads all waiting in read(2), as before: a thread
// blocked in a system call keeps its P (the Go scheduler's CPU slot) until
// sysmon takes it away, which sysmon does every 20 us once no P is idle,
// starting a spinning thread each time; and the kernel wakes the waiter
// that slept longest, whose P is gone. On 2 CPUs a serial create+unlink
// with 8 such workers made about 1.8 context switches per request and ran
// at half the rate of a single worker (0.8). Handing every request to a
// fresh reader, as go-fuse does, costs a thread wakeup per request too.
//
// Tried and not merged (session 9, h-fusewrite 9245f6a): a large WRITE
// keeping the reader token (served under the handOffAfter timer) unless
// poll(2) showed another request already queued, so a serial writer is
// served by one thread. Fresh `serve --mount`, 512 MiB in 1 MiB write()s
// + fsync, default settings, alternating: 1.03x [1.00-1.04] MB/s quiet
// (10 rounds), 1.09x [1.04-1.29] busy, futex 2877 -> 1049 per sample.
// Not kept because a stat arriving while a WRITE is in service then
// waits up to handOffAfter for it, the head-of-line wait issue 15's mixed
// row measures: the stat client's p99 under the 1 GiB writer 579-612 us
// against 484-534 us without it (2 runs x 2 rounds per build). Metadata
// never waiting behind bulk data outranks 3% of sequential write speed.
//
// Tried and rejected (issue 15, 2 CPUs, so one reader token): handing the
// token on at once whenever poll(2) showed another request queued in
// /dev/fuse, so that eight parallel create+unlink clients were served
// two (or more) requests at a time. It did serve them in parallel (78% of
// requests read while another was in service, against 1-2% with the
// handOffAfter timer alone) but ran slower: 6450-6780 triples/s against
// 7250-7540 for the serial worker in alternating runs, with a third more
// server CPU. On this machine (a paravirtualised guest where every
// wakeup and context switch is dear) the second server thread bought
// more scheduler work (the Go runtime's sysmon and P handoffs around
// each syscall, more preemptions on the reply's wakeup) than CPU time.
// passthrough_hp spends about the server CPU per create+unlink that our
// one serial worker does (1.16 s against 1.07-1.10 s for 8000) but keeps
// both CPUs busy (1.96 against 1.4-1.6): its threads wait in read(2) and
// the kernel wakes them directly.
// Again later (8 python clients x 1000 open(O_CREAT)+close+unlink,
// fresh servers, 3 rounds each, perf stat on the server): system calls
// per triple 25.5-25.7 ours against 28.5-28.6, context switches 3.1-4.4
// against 5.0-5.4, server CPU 1.42-1.50 s against 1.27-1.62 s per 8000
// triples: per operation ours costs no more; the gap is the overlap.
// perf trace saw about one runtime nanosleep per read(2) on our threads
// (sysmon and spinning Ms), not measured further. Capping the parallel readers at 2, 3
// or 8, or raising the server's GOMAXPROCS to 4, did not close the gap.

// Eight parallel random readers (fusebench par-randread: 8 fio jobs, 4 KiB
// psync reads, fadvise RANDOM, default settings, 2 CPUs; session 7).
// Where the gap to passthrough_hp (0.81x median, 0.66-1.13x, over the
// shipped build's 8 rounds below) goes:
//   - Not the cache mode. Counted with the kernel's fuse:fuse_request_send
//     tracepoint, both servers get exactly one READ per fio read (32,768
//     per sample, 131,072 in four samples, nothing served from the page
//     cache); keep_cache and passthrough_hp's long timeouts change nothing
//     for reads that each touch a new page.
//   - Syscalls per READ (raw_syscalls:sys_enter, by comm, 65,536 READs):
//     passthrough_hp 3 (read, pread64, writev: it copies 4 KiB replies);
//     ours 5 (read, then splice file -> pipe, write the header, splice
//     pipe -> pipe, splice -> /dev/fuse: splice.go) plus runtime nanosleeps
//     (0.14 per READ). Server CPU per READ ran 1.15x passthrough_hp's
//     (median, 0.84-1.39x) in the same rounds.
//   - Cores: client and server CPU over the jobs' runtime came to 1.8-1.9
//     for ours, 2.4 for passthrough_hp (fio's start-up counts too, hence
//     above 2) in the first run: with one reader token (2 CPUs) a 20 us
//     READ is read by the next worker only after this one replies.
// Tried, not kept (runs of 2-3 rounds, builds alternating, each round a
// ratio against passthrough_hp in its own run; the machine was shared
// and noisy):
//   - Copying READs under 16 KiB instead of splicing them: 0.87x
//     [0.63-1.09] against 0.81x [0.66-1.13] spliced, 8 rounds each,
//     within that noise. A quieter A/B later (alternating fresh mounts,
//     one binary, 10 rounds) showed 1.11x IOPS at 4 KiB and 0.86x server
//     CPU per READ: shipped, up to 16 KiB (splice.go's copyReadMax).
//   - Handing the reader token on at once for every READ, so that the
//     next request is read while a small READ is served (copied 4 KiB
//     READs, the same A/B): 0.95x [0.84-1.15] the IOPS of keeping the
//     token, server CPU 1.04x [1.00-1.14] per READ. The worker that reads
//     a small READ serves it and reads the next one itself.
//   - Every worker a reader, each with a P of its own (GOMAXPROCS=10, so
//     Readers = Workers = 8 and a thread back from read(2) keeps its P,
//     with no sysmon hand-off): 0.78x [0.69-0.87] (2 rounds; with small
//     READs copied too 0.74x [0.58-0.90]) and server CPU 1.37-1.72x
//     passthrough_hp's (0.81-1.00 s against 0.58-0.59 s per 32,768
//     READs): more threads waking on 2 CPUs cost more than the parallel
//     reads gained. Two readers (GOMAXPROCS=3): 0.79x [0.58-1.19]
//     against 0.74x [0.69-0.94] shipped, 3 rounds each, server CPU
//     0.87-1.92x passthrough_hp's against 0.97-1.30x: no gain to see.
// The mixed row, shipped build, the same afternoon (fusebench -quick, so
// 1,000 idle probes; 2 rounds): the stat client's p99 under the 1 GiB
// writer was 1.37x and 1.66x its idle p99 (passthrough_hp 3.55x, 7.7x),
// the writer 0.61x [0.42-0.80] passthrough_hp's MB/s.
// Session 10 (h-parread), the same 8-job fio against passthrough_hp,
// default settings, fresh mount per sample, host files cached, rounds
// alternating in one heavy-lock hold, perf stat on the server process:
// IOPS 0.76x [0.71-0.82] (12 rounds, busy 2-core machine). Per READ the
// two servers now do the same three system calls (ours read, preadv,
// write: small READs are copied, splice.go; passthrough_hp as fusebench
// runs it: read, pread64, writev, no splice for 4 KiB) and ours costs
// less: task-clock 19-23 us per READ against 21-24 us, context
// switches 17.9-20.5k against 16.8-20.4k and futex 402-497 against
// 295-547 per 32,768 READs (6 rounds). The gap is overlap, not cost:
// passthrough_hp grows from 3 to 11 threads during the run (libfuse
// starts one whenever none is left waiting in read(2)) and the kernel
// hands each READ to a waiting thread, so it keeps both CPUs busy, and
// /sys/fs/fuse/connections/N/waiting, sampled every 50 ms, read a
// median of 0 requests in flight; ours (8 workers, one reader token on
// 2 CPUs) read medians of 1-7, up to all 8 clients' requests queued in
// the kernel behind the one worker serving. What was tried to overlap:
//   - Two reader tokens at GOMAXPROCS=2 (both readers blocked in
//     read(2)): 0.92x [0.91-0.98] the IOPS of one token, server CPU
//     846-1023 ms against 622-746 ms per sample, futex 5x (1985-2448
//     against 402-497): the second reader's P hand-offs cost more than
//     it overlaps.
//   - Every worker a reader at GOMAXPROCS=2 (Readers = 8): 1.03x
//     [1.02-1.07] and 1.03x [1.00-1.11] the IOPS of one token (6 and 8
//     rounds), still 0.79x passthrough_hp's, for 1.35x the server CPU
//     (749-919 ms against 575-671 ms) and 4x the futex calls (1275-1600
//     against 321-418) per sample; the serial rows' cost of many readers
//     (above) rules it out for so little.
//   - GODEBUG=asyncpreemptoff=1 (strace -c -f saw 409 tgkill preemption
//     signals and 0.65 runtime nanosleeps per READ, under strace):
//     0.99x [0.95-1.04], 6 rounds. Not the cost.
//   - handOffAfter 30 us instead of 200 us, so a READ slowed by the
//     client's CPU use lets the next worker read: 0.95x [0.95-1.01],
//     6 rounds, futex 2.2x (691-913 against 312-402 per sample).
// What is left: readers that do not need a P to block and wake (threads
// outside the Go scheduler, as libfuse's), a larger change than this
// session could measure; not tried (session 11 below).
// Session 11 (h-parread), readers that block in read(2) without the Go
// scheduler's hand-off. Reasoning first:
//   - LockOSThread alone changes nothing on the fast path (a thread back
//     from read(2) whose P is still in _Psyscall takes it back either
//     way) and adds a hand-off on the slow one: a locked M that finds
//     its P retaken sleeps until another M schedules its goroutine and
//     wakes it (startlockedm: two futex wakes instead of one).
//   - sysmon retakes a P from a blocked reader only when no P is idle
//     (or after 10 ms), so GOMAXPROCS = readers + 1 keeps every reader's
//     P: back from read(2) it runs at once, no futex, no spinning M.
//   - RawSyscall for the blocking read(2) keeps the P running, so a GC
//     stop-the-world waits for that read to return: with no request
//     coming (or the next one waiting for a reply the stopped world
//     owes) the whole server deadlocks. Not tried. A RawSyscall poll
//     with a timeout bounds it, but adds the timeout to every GC pause.
//   - Threads outside the Go scheduler, as libfuse's, need cgo (the
//     build is CGO_ENABLED=0) or raw clone(2) threads running no Go code
//     on handle tables the GC cannot see, racing RELEASE closing an fd
//     (a READ served from another file): not safe, not tried.
// Measured (busy 2-core machine, load 3.6-5.6 from other sessions;
// default settings; fresh mount per sample, host files cached; builds
// alternating within rounds in one heavy-lock hold; ratios within
// rounds, median [p25-p75]; CPU: server task-clock per READ, perf stat):
//   - Two readers, each with its own P (GOMAXPROCS=3, so Readers=2):
//     1.01x [0.90-1.05] (6 rounds) and 0.96x [0.84-0.99] (8) the IOPS of
//     the shipped build, CPU 1.20x and 1.27x; locked to their threads
//     (LockOSThread): 0.97x [0.91-1.01], CPU 1.19x (8).
//   - Eight readers, each with its own P (GOMAXPROCS=9): 0.91x
//     [0.81-1.00], CPU 1.60x, futex 1791 against 287 per 32,768 READs
//     (6); locked: 0.94x [0.85-0.98], CPU 1.61x, futex 2364 against 271
//     (8). Eight locked readers at GOMAXPROCS=2: 0.79x [0.67-0.87], CPU
//     1.36x, futex 3624 against 366 (6).
//   - Without the handOffAfter timer: 0.89x [0.84-0.96] (6): the timer
//     earns its keep here (see below why).
//   - The server's EEVDF slice request (sched_setattr sched_runtime, all
//     threads): 100 us 0.99x [0.95-1.00], 300 us 0.97x, 3 ms 0.94x
//     [0.91-0.98], 10 ms 0.94x [0.91-0.97]; nice -5 (a diagnostic, not a
//     candidate) 1.02x [0.95-1.11]: not its CPU share.
//   - The shipped build against passthrough_hp in the same runs: 0.93x,
//     0.99x, 0.86x, 0.84x, 0.97x [0.96-0.99], 0.96x [0.89-1.04], at 0.80-
//     0.92x its server CPU per READ.
// Where the rest goes (perf sched record -a, one 8-job run of the shipped
// build, 43.6k IOPS): the serving worker is preempted by the fio jobs its
// replies wake 12,878 times per 32,768 READs (0.39 per READ) and waits
// 0.219 s to run again, 0.105 s of it (9% of the run) while the other
// CPU is idle (presumably the idle CPU will not pull a thread that ran
// within the scheduler's migration cost), and the requests queued
// meanwhile wait for it.
// passthrough_hp the same way (48.7k IOPS): its threads were preempted
// 17,175 times, and of their 4.68 s of waiting (summed over threads)
// only 0.006 s fell while a CPU was idle; CPUs idle 0.51 s of 2 x 1.06 s
// against our 0.86 s of 2 x 1.15 s. In the A/B rounds the machine was
// 26-37% idle during our runs, 22-26% during passthrough_hp's
// (/proc/stat, the 6 of 8 rounds others left quiet): its spare threads
// in read(2) take the queued requests on the idle CPU, for 1.2-1.3x our
// CPU per READ. Our extra readers do the
// same at a cost that eats the gain (above); the 200 us timer covers the
// long preemptions only (30 us: 0.95x, session 10). No code kept.
//
// Tried and rejected (session 8): FUSE_DEV_IOC_CLONE, a clone of the
// session fd per worker (libfuse's clone_fd; passthrough_hp as fusebench
// runs it does not use it), each worker reading, splicing and replying on
// its own fd (the kernel looks a reply up in the processing list of the
// fd it is written to). In fs/fuse/dev.c the clones share the
// connection's one input queue: readers still wait on one waitqueue and
// are woken one at a time; only the processing list (and its lock) is
// per fd, which matters to many CPUs, not to one reader token on 2.
// Measured (fresh mount per sample, host files cached, interleaved
// rounds in one heavy-lock hold, default settings, load ~4 from other
// users; ratios within rounds, median [p25-p75], 12 rounds): 8-job fio
// 4 KiB randread 0.93x [0.91-1.05] the single fd's IOPS, server CPU
// 1.00x [0.98-1.07]; clones with two reader tokens 0.90x [0.88-0.99],
// CPU 1.33x [1.25-1.41]; passthrough_hp 1.09x [0.94-1.14] in the same
// rounds. 8 rounds each: 8 clients lstat-walking 1,500 files 1.00x
// [0.97-1.13], 8 clients x 1,000 create+close+unlink 1.00x [0.98-1.11].
// No gain for 8 more descriptors per mount and an open+ioctl per spare.
//
// Why the mixed row's p99 ratio swings (1.37x to 8.30x between runs):
// the probes under the writer fall in two phases with very different
// latencies, and the row's p99 is taken over both. A copy of the row
// that stamps each probe (the same 1 GiB of 1 MiB writes then fsync,
// 5,000 idle probes, drop_caches before each sample, a fresh server,
// krunbench and passthrough_hp alternating, 2 CPUs, default settings,
// 13 and 12 rounds) gave, in us where not said:
//
//	                        krunbench        passthrough_hp
//	idle p99                92-267           79-160
//	write() phase p99       370-1800         1968-4275
//	fsync phase p99         103-181          95-334
//	write() phase (s)       0.77-2.70        0.55-1.42
//	probes in write phase   27-60%           18-35%
//	p99 ratio (the row's)   1.81-10.76       2.71-12.08
//
// In the write() phase the stat client waits for a CPU (the server's
// own LOOKUP time stays near 50 us, see above), and it waits less
// beside our server than beside passthrough_hp; in the fsync phase the writer's FSYNC
// is handed off (slowRequest) and probes run about as fast as idle
// ones. So the overall p99 follows the share of probes made during
// write() and the idle p99 it is divided by: our runs whose write()
// took under 1.2 s had 2.48-3.67x (write()-phase p99 370-469 us with
// writers under 0.9 s), those of 1.4 s or more 1.81-10.76x (1304-1800
// us; the two low ratios had idle p99s of 249 and 267 us).
// passthrough_hp's writes only fill its writeback cache, so its write()
// phase is short and most of its probes land in its fsync.
//
// The writer's own time swings 0.7-2.7 s on one build, mostly in the
// last 128 MiB of write(): 0.10-0.19 s in fast runs, 0.53-1.27 s in
// slow ones (passthrough_hp 0.06-0.60 s); alone, without probes, 0.18-
// 0.52 s against passthrough_hp's 0.06-0.19 s. Without the writeback
// cache the write() phase allocates 2 GiB (the client's page cache and
// the host file's), passthrough_hp's 1 GiB (the host's comes in its
// fsync), so the free page reporting cost of bench/fusebench/memory.go
// (the balloon stays bound on default settings) would land in our
// write() phase; a hypothesis: waiting 6 s after the cache drop instead
// of none did not separate the runs (0.85-1.67 s against 0.82-2.11 s,
// 3 runs each). No request of the stat client was found waiting on the
// server: 1 MiB WRITEs and FSYNC already hand the reader token on at
// once, only two requests are ever in flight (so neither max_background
// nor all workers busy applies: without the writeback cache the
// writer's WRITEs are synchronous).

// Tried, not kept (session 14, h-fusepoll edc0d50): a short poll of
// /dev/fuse before a read while the client looks synchronous, so the
// reader is not asleep in read(2) when the next request comes (a vCPU
// that halts is woken by an IPI through the hypervisor here). After 3
// requests in a row read within the window (300 us) of the previous
// reply, the one token holder looped poll(fd, 0) + sched_yield until a
// request was queued or the window after the later of its start and
// the last reply (any worker's) ran out, 2 ms at most; a poll that
// found nothing ended the streak (a real-mount test saw no poll for a
// client sleeping between LOOKUPs, and for a fast one 1,997 of 2,000
// LOOKUPs found by polls, 1,548-1,910 beside two busy loops). Without
// the yield the spinner kept the client its reply woke off that CPU:
// 77-174 of ~1,041 WRITEs found by polls, dd 512 MiB conv=fsync 0.63-
// 0.88 s against 0.58-0.75; with it 79-99% were found. fusebench
// -settings default -runs 2, old and new binaries alternating per run
// (ABBA), 8 pairs in two heavy-lock holds, go-fuse and passthrough_hp
// in the same rounds, new/old of the runs' medians, median [p25-p75]:
//
//	write (fresh)         0.98 [0.96-1.01]  server CPU 0.168 -> 0.290 s
//	write-warm            1.00 [0.97-1.08]  0.163 -> 0.277 s
//	write --writeback     1.04 [1.01-1.12]  0.255 -> 0.223 s
//	write-warm --wb       1.01 [0.93-1.05]  0.193 -> 0.193 s
//	stat (fresh)          1.11 [1.06-1.14]  0.237 -> 0.253 s
//	create (fresh)        1.13 [1.09-1.15]  1.147 -> 1.573 s
//	par-randread          1.00 [0.97-1.01]  0.580 -> 0.615 s
//	mixed writer          0.97 [0.96-1.04]  1.385 -> 1.605 s
//	mixed p99/idle p99    7.6 -> 7.9 (p99 under the writer 738 -> 696 us)
//
// ours/go-fuse (medians of the runs): write 1.18x old, 1.19x new;
// write-warm 1.16x old, 1.14x new. The sequential write's reader wakeup
// is not where its time goes (serial copies, as splicein.go's session 10
// note found); the poll only adds CPU. The metadata rows, already ahead
// of both peers, gained 11-13% (the LOOKUP or CREATE stream's reader no
// longer sleeps between requests), for 1.37x the server CPU on create.

// worker is one serving goroutine's state.
type worker struct {
	m     *Mount
	held  atomic.Bool // this worker holds a reader token
	timer *time.Timer // hands the token on when a request is slow
}

// take blocks until the worker holds a reader token.
func (w *worker) take() {
	if !w.held.Load() {
		w.m.readers <- struct{}{}
		w.held.Store(true)
	}
}

// handOff gives the token back, once; it runs on the worker and from the
// timer, whichever comes first.
func (w *worker) handOff() {
	if w.held.CompareAndSwap(true, false) {
		<-w.m.readers
	}
}

func (m *Mount) loop(fd int) {
	defer m.wg.Done()
	w := &worker{m: m}
	w.timer = time.AfterFunc(time.Hour, w.handOff)
	w.timer.Stop()
	// A worker that stops gives its token back, so the parked ones read
	// too, see the same error and stop in turn.
	defer w.handOff()
	bufs := m.takeBufs()
	defer m.keepBufs(bufs)
	in, out := bufs.in, bufs.out
	inv, outv := [][]byte{nil}, [][]byte{out}
	var sp fuse.ReadSplicer
	var s *splicer
	if !m.noSplice {
		s = newSplicer(fd, &m.spliceFailures, m.maxRequest)
		defer s.close()
		defer s.closeIn()
		sp = s
	}
	pw := &pendingWrite{s: s, spliced: &m.splicedWrites, buf: in[writeDataOffset:]}
	for {
		w.take()
		n, pending, spliced, err := 0, 0, false, error(nil)
		if s != nil && m.spliceCredit.Load() > 0 {
			n, pending, spliced, err = s.readRequest(in)
		}
		if !spliced {
			n, err = unix.Read(fd, in)
		}
		switch {
		case err == unix.EINTR || err == unix.EAGAIN || err == unix.ENOENT:
			continue
		case err != nil:
			if err != unix.ENODEV && err != unix.EBADF {
				m.once.Do(func() { m.err = fmt.Errorf("fusedev: read: %w", err) })
			}
			return
		}
		slow := slowRequest(in[:n], pending)
		if slow {
			m.slow.Add(1)
			w.handOff()
			m.spare(fd)
		} else {
			w.timer.Reset(handOffAfter)
		}
		if s != nil {
			switch {
			case pending >= bulkWriteMin || (pending == 0 && bulkWrite(in[:n])):
				m.spliceCredit.Store(spliceCredit)
			case spliced:
				m.spliceCredit.Add(-1)
			}
		}
		inv[0] = in[:n]
		var size int
		var reply bool
		if pending > 0 {
			pw.left = pending
			size, reply = m.srv.ServePending(inv, outv, sp, pw)
			pw.finish()
		} else {
			size, reply = m.srv.ServeSplice(inv, outv, sp)
		}
		if reply {
			// ENOENT: the request was interrupted and the kernel forgot it.
			_, err = unix.Write(fd, out[:size])
		}
		w.timer.Stop()
		if slow {
			m.slow.Add(-1)
		}
		if reply && (err == unix.ENODEV || err == unix.EBADF) {
			return
		}
		if m.retire() {
			return
		}
	}
}

// spare starts one more worker when slow requests (slowRequest) leave
// fewer than freeWorkers of the live ones for everything else, up to
// maxWorkers in all; m.live counts the new one before it runs.
func (m *Mount) spare(fd int) {
	for {
		n := m.live.Load()
		if n >= m.maxWorkers || n-m.slow.Load() >= freeWorkers {
			return
		}
		if m.live.CompareAndSwap(n, n+1) {
			m.wg.Add(1) // a live worker holds the count above zero
			go m.loop(fd)
			return
		}
	}
}

// retire reports whether the calling worker, between requests, should
// stop: there are more than the configured workers, and more than
// freeWorkers would stay free of slow requests without it (one more
// than spare asks for, so a steady load does not start and stop a
// worker per request).
func (m *Mount) retire() bool {
	for {
		n := m.live.Load()
		if n <= m.workers || n-1-m.slow.Load() < freeWorkers {
			return false
		}
		if m.live.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// keptBufs is how many retired workers' buffers a mount keeps for the
// next spare workers. A spare that made its own took two fresh 1 MiB
// buffers, which the runtime zeroes and the kernel faults in: with
// --writeback (WRITEs in flight at once, spares started and retired
// through the stream) runtime.memclrNoHeapPointers was 5.6% of the
// server's perf samples on a cold 512 MiB dd + fsync (22% when workers
// waited longer). Kept buffers, default settings, 6 pairs (ABBA) on
// --writeback: server CPU (perf stat task-clock) new/old median 0.77
// [0.52-0.95], 257 ms against 321; wall new/old 1.03 [0.92-1.06] (7
// pairs) and 0.99 [0.84-1.38] without --writeback (8 pairs): no wall
// gain, the CPU is off a path that was not the bottleneck. Two pairs
// stay live (about 4 MiB) after a burst of slow requests.
const keptBufs = 2

// workerBufs is a worker's request and reply buffers.
type workerBufs struct{ in, out []byte }

// takeBufs returns a retired worker's buffers, or new ones.
func (m *Mount) takeBufs() workerBufs {
	select {
	case b := <-m.freeBufs:
		return b
	default:
		return workerBufs{alignedAt(bufSize, writeDataOffset), alignedAt(bufSize, fuse.OutHeaderSize)}
	}
}

// keepBufs keeps a stopping worker's buffers for the next spare, up to
// keptBufs of them.
func (m *Mount) keepBufs(b workerBufs) {
	select {
	case m.freeBufs <- b:
	default:
	}
}
