package vhostuser

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Queue threads: a request queue's kicks are waited for by a goroutine of
// its own blocked in epoll_pwait(2) on an epoll instance of its own (the
// kick fd edge-triggered, a stop eventfd), outside the runtime's
// netpoller, and each kick is served on that goroutine (Device.ServeKick):
// wait, serve, write to the call fd, as virtiofsd's queue thread does
// (which also reads the kick fd: see thread). Until the edge-triggered
// wait the thread was blocked in ppoll(2) on the two fds; what follows
// about "the ppoll" holds for the wait that replaced it. Which queues get one is the device's
// choice (queueThreader: each of virtio-fs's request queues; its hiprio
// queue's kick fd joins the first request queue's epoll, so its FORGETs
// wake no thread of their own, see virtiofs.Device.QueueThread).
//
// Why no thread of its own for the hiprio queue: a goroutine blocked in a system call keeps
// its P. The earlier ppoll design (3d82c00, rejected in 25ccdd8) had a
// thread for the hiprio queue too; on this 2-CPU machine both Ps then sat
// in syscalls, so sysmon retook them every 20 us (retake -> handoffp ->
// startm, a futex wake) and the reader had to find a P again on every
// kick: nanosleep 2.68 and futex 0.57 per request (sysmon's usleep and
// exitsyscall). With one queue thread in ppoll and the other Ps idle,
// sysmon leaves the P alone for 10 ms (retake skips a P in a syscall
// while its run queue is empty and some P is idle) and backs off its own
// sleep to 10 ms, so a kick that ends the ppoll finds its P still there:
// exitsyscall's fast path, no futex.
//
// Not used: RawSyscall for the wait (no entersyscall at all; issue 15
// item 3, reasoned from Go 1.26's proc.go, not measured). The blocked
// thread would hold a running P (_Prunning) for as long as the guest is
// quiet: that P runs nothing else, goroutines it readied wait in its
// runnext until stolen, and sysmon, finding its schedtick 10 ms old,
// preempts it (preemptone: SIGURG; the handler cannot preempt inside the
// system call, but epoll_pwait and ppoll return EINTR after any handler,
// SA_RESTART or not), so the thread would come back to Go every 10 ms
// and be preempted there (gopreempt_m -> goschedImpl: the global run
// queue and wakep, what runtime.Gosched costs now) plus a signal; sysmon
// would keep its 10 ms ticks too, since that P is never idle. A
// stop-the-world GC would not wait 10 ms (stopTheWorldWithSema's
// preemptall signals the M at once, the wait returns EINTR and the
// goroutine stops at its next safe point), but every STW and every
// sysmon tick would interrupt the wait: nothing gained over the
// entersyscall/exitsyscall pair, which costs about 1.6% of the backend
// (perf: exitsyscall 1.3%, reentersyscall 0.25%, for all its calls).
// runtime.LockOSThread: the goroutine never parks on the fast path, so a
// locked thread gains nothing there, and where it does park (a full jobs
// channel, the pop lock) a locked M must hand its P off and be woken
// again for this goroutine alone. Tried anyway against the goroutine
// moving between three Ms (the breakdown below): locked, every wait ran
// on one thread (perf trace -s: 14,884 epoll_pwait on it), but each
// yield then goes through stoplockedm and startlockedm, two M wake-ups:
// futex 4,531 against 1,784, context switches 19,360, 20,972, 18,726
// against 17,027, 16,716, 16,786, CPU migrations 555, 223, 469 against
// 396, 342, 394, task-clock over virtiofsd's 1.21x, 1.55x, 1.02x against
// 0.95x, 0.89x, 1.11x (guestbench stat, default settings, L Y L Y L Y in
// one hold): worse, not kept.

// Measured (guestbench, TCG guest, default settings, --readdirplus auto
// with the tap on; 2,000 create+unlink and find+stat of 5,000 files; old
// and new binaries alternating N O N O in one lock hold on the busy 2-core
// machine, each beside virtiofsd in the same run): backend CPU over
// virtiofsd's, create 1.10x and 1.35x against 2.57x and 1.23x before,
// stat 1.56x and 2.08x against 3.60x and 2.06x; stat's own CPU 0.25 and
// 0.25 s against 0.36 and 0.33 s (-27%); stat wall 0.96x and 1.23x
// against 1.65x and 0.96x. strace -c -f (create, per request): futex 0.72
// -> 0.12, epoll_pwait 1.50 -> 0.53, EAGAIN reads 0.72 -> 0.14.
// A second hold (N O N O, create, stat and a 64 MiB read), busier still:
// create 2.36x and 1.65x against 2.82x and 1.81x (own CPU 1.25 and 0.76 s
// against 1.58 and 0.96 s, -21%); stat 2.18x and 2.73x against 2.73x and
// 1.82x, and a third hold's stat spread from 0.68x to 2.27x: the stat gain
// of the first hold is not shown beyond this machine's noise.
//
// What was left: nanosleep stayed at about 1.75 per request, all of it
// sysmon's usleep, and futex wake-ups of a deep-sleeping sysmon from the
// queue thread's exitsyscall (exitsyscallTryGetP). The cause (Go 1.26's
// retake): the queue thread never parks, so its P's schedtick stands
// still, and once it is 10 ms old sysmon takes the P at every tick the
// thread spends in ppoll. Fixed by kickWait below (a bounded ppoll and a
// runtime.Gosched once per 5 ms while kicks come), with the numbers there.
// perf -F 2000 -g of the backend before that (create + stat boot, 4,787
// samples): sysmon 12%, the queue thread's ppoll sleep and wake-up 11.6%
// and the call eventfd write 7.0% (both also virtiofsd's), first reads of
// guest memory (the request's opcode in slowRequest 2.0%, readDesc 4.0%:
// cache misses on what the vCPU just wrote).
//
// Where the CPU goes against virtiofsd (issue 15 item 3; guestbench stat,
// find+stat of 15,000 files, about 14,870 requests, default settings,
// --readdirplus auto; the ppoll design with 5 ms yields, before the
// edge-triggered wait). perf stat of each backend's whole run, two pairs:
// task-clock 1,170 and 778 ms against virtiofsd's 739 and 620 ms; user
// 0.74 and 0.52 s against 0.42 and 0.34 s, sys 0.92 and 0.54 s against
// 0.60 and 0.52 s (rusage, which on this PVM guest counts more than
// task-clock); context switches 20,691 and 18,941 against 15,924 and
// 16,129; CPU migrations 977 and 715 against 239 and 219; system calls
// 80,927 and 78,963 against 90,880 and 90,868. perf trace -s, per
// request: ours ppoll 0.96, read 0.95 (the kick), write 1.00 (the call),
// newfstatat 1.01 and name_to_handle_at 1.01 (LOOKUP), futex 0.30 and
// nanosleep 0.11 (sysmon), the queue goroutine's calls spread over three
// threads (6,182, 6,750 and 1,334 ppolls: it moves between Ms); virtiofsd
// one thread, ppoll 1.00, read 1.00, write 1.00, and openat, statx and
// close 1.01 each for LOOKUP, no futex. So ours makes fewer system calls
// and loses in what surrounds them. perf record -F 4000 -g of one pair
// (1,098 ms of samples against 938 ms, +160 ms, about 10.7 ms per 1,000
// requests): the wait (ppoll) 297 against 239 ms (+58) and the call write
// 171 against 133 ms (+38), both mostly the kernel's sleep, wake-up and
// context switch (pvm_irq_enable under finish_task_switch; the goroutine
// changing threads and CPUs costs there); runtime.Gosched 38 ms (3.5%,
// plus the spinning M that its wakep wakes), sysmon 36 ms (3.3%, its
// nanosleep every 10 ms while the queue thread holds a P in a system
// call: about 1,600 per run), futex 19 ms, GC 13 ms; the kick read 39
// against 40 ms; readDesc 6.3% against virtiofsd's vu_queue_get_avail_bytes
// 8% (first touches of what the vCPU wrote). What this file can take from
// that: the kick read (the edge-triggered wait, thread) and half the
// yields (kickWait); sysmon's ticks are the price of keeping the P
// (above), and the rest lies in the request path, not here.
//
// After the edge-triggered wait and the 9 ms yields, against f9b67d6 (the
// ppoll with 5 ms slices; guestbench, default settings, --readdirplus
// auto, perf stat of the backend's whole run, N O N O N O, one workload
// per hold, each beside virtiofsd; medians): task-clock over virtiofsd's,
// per 1,000 requests, stat 1.16x (1.16, 1.33, 1.15) against 1.24x (1.24,
// 1.24, 1.09); create 1.14x (1.62, 1.09, 1.14) against 1.39x (1.34,
// 1.91, 1.39; virtiofsd serves 35,009 requests to our 30,008, a FLUSH per
// file); read 1.18x (1.05, 1.18, 1.41) against 1.24x (1.23, 1.24, 1.26).
// User and sys seconds (rusage), ours against virtiofsd's beside it: stat
// 0.37 and 0.40 against 0.26 and 0.36 (old: 0.46 and 0.37 against 0.27
// and 0.39); create 0.55 and 0.61 against 0.37 and 0.63 (old: 0.50 and
// 0.63 against 0.36 and 0.58); read 0.08 and 0.30 against 0.07 and 0.25
// (old: 0.09 and 0.29 against 0.07 and 0.25). System calls: stat 62.6k-
// 63.2k against 78.1k-79.1k, create 132.6k-133.3k against 163.4k-165.3k,
// read 8.3k-9.3k against 10.5k-10.6k. Ours spends its extra in user time
// (the runtime and the request path); sys is virtiofsd's or below except
// on read, where chains handed to the workers add context switches (3,600-
// 4,300 against virtiofsd's 2,200). Every run on the busy 2-core machine
// (load 3-4): the medians moved the right way, the spreads overlap, and
// the 0.8x target is not met by this file's part. Wall time over
// virtiofsd's in the same runs (under perf stat): stat 1.21x, 1.62x,
// 1.12x against 1.27x, 1.21x, 1.04x; create 1.42x, 0.69x, 0.85x against
// 1.09x, 1.36x, 1.09x; read 1.04x, 0.62x, 1.30x against 0.99x, 1.00x,
// 0.66x: noise either way, nothing here adds a wait to the request path.
//
// Not done: coalescing the call eventfd writes of a kick's chains. In the
// stat and create workloads the guest has one request in flight, so each
// kick brings one chain and each chain needs its interrupt (write calls
// 14,880 for 14,863 requests); where a kick brings several (readahead
// READs) all but the last are served by the workers, and a worker that
// left the interrupt to a later completion could leave it to a request
// held for ever (SETLKW, a breakpoint): a lost interrupt. With EVENT_IDX
// NeedsNotification already skips the writes the guest did not ask for.
//
// Seq read (64 MiB, the guest's readahead READs concurrent: all but the
// last chain of a kick go to the workers) did not gain and may have lost:
// CPU ratio to virtiofsd 1.70x, 1.27x, 1.34x, 1.33x against 1.17x, 0.93x,
// 1.14x, 1.24x for the netpoller reader (two holds, N O N O and
// G O N G O N; the machine was overloaded: virtiofsd's own CPU for the
// same stat walk ranged 0.11-0.59 s). A suspect: a worker woken by the
// queue thread lands on its P's runnext and waits there while the thread
// holds that P in ppoll. Tried and rejected: runtime.Gosched before every
// ppoll (G above): read 1.37x, 1.42x, no better.

// queueThreader is a device that says which queue thread waits for each
// queue's kicks (virtiofs.Device.QueueThread): the index of the queue
// that owns the thread, or -1 for the runtime's netpoller. Queues that
// name the same owner share its thread.
type queueThreader interface {
	QueueThread(index int) int
}

// startThread starts the queue thread for the kicks of ws, duplicating
// each kick fd (the thread owns the duplicates). The thread waits in an
// epoll instance of its own (ep) with the kick fds registered
// edge-triggered and the stop eventfd level-triggered (see thread for why
// edge-triggered).
func (p *poller) startThread(ws []kickWatch) (*kickReader, error) {
	r := &kickReader{index: ws[0].index, stop: -1, ep: -1, done: make(chan struct{})}
	fail := func(err error) (*kickReader, error) {
		r.closeFds()
		return nil, fmt.Errorf("queue thread of queue %d: %w", r.index, err)
	}
	for _, w := range ws {
		fd, err := unix.FcntlInt(uintptr(w.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fail(err)
		}
		r.kicks = append(r.kicks, kickWatch{index: w.index, fd: fd})
	}
	var err error
	if r.stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(err)
	}
	if r.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(err)
	}
	for _, k := range r.kicks {
		kick := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(k.fd)}
		if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, k.fd, &kick); err != nil {
			return fail(err)
		}
	}
	stop := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(r.stop)}
	if err := unix.EpollCtl(r.ep, unix.EPOLL_CTL_ADD, r.stop, &stop); err != nil {
		return fail(err)
	}
	go p.thread(r)
	return r, nil
}

// wake asks a queue thread to return; it never blocks (the stop eventfd is
// non-blocking, and a counter at its maximum wakes the thread anyway).
func (r *kickReader) wake() {
	var one [8]byte
	ne.PutUint64(one[:], 1)
	unix.Write(r.stop, one[:])
}

// closeFds closes a stopped queue thread's fds.
func (r *kickReader) closeFds() {
	for _, k := range r.kicks {
		unix.Close(k.fd)
	}
	r.kicks = nil
	for _, fd := range []*int{&r.ep, &r.stop} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// thread serves every kick of one fd until it is stopped (wake); an error
// of the wait stops it (logged), so that a broken fd cannot make it spin.
//
// One system call per wake-up: the kick fd is registered edge-triggered
// and never read. Its counter is not what tells the thread about a kick:
// every signal of an eventfd, a write(2) from the front-end (QEMU's TCG
// vCPU thread, event_notifier_set) or eventfd_signal from the kernel
// (KVM's ioeventfd), adds to the counter and calls wake_up_locked_poll on
// the eventfd's wait queue whatever the counter was (fs/eventfd.c:
// eventfd_write, eventfd_signal_mask), and epoll's ep_poll_callback
// (fs/eventpoll.c) then puts the item on the ready list unless it is
// already there, so each kick is a new edge even while the counter stays
// above zero. The counter left unread blocks no signal: the kernel's
// eventfd_signal saturates at ULLONG_MAX and never blocks, and a write of
// 1 fails (EAGAIN, non-blocking fds) or blocks only once the counter is
// at ULLONG_MAX-1, some 2^64 kicks, 580,000 years at a million kicks a
// second. A front-end that reads the counter itself takes nothing from
// the thread (the edge was queued by the write). What edge-triggered
// waiting does ask: every wake-up must be followed by a full drain of the
// ring, with the look after notifications are enabled again, since a kick
// that came during the drain may have been consumed by the same wake-up;
// p.serve (Device.ServeKick: drain) does both. The kick read that the
// ppoll design needed (ppoll, then read, which reset the counter) was
// about 1 of the 5 system calls of a stat request, as many as virtiofsd
// makes (ppoll and read); a wake-up after a drain that already took the
// kick's chain costs an empty pop.
//
// Measured (default settings; guestbench stat, find+stat of 15,000 files,
// about 14,870 requests, TCG guest, --readdirplus auto with the tap; perf
// stat of the backend's whole run, edge-triggered and ppoll binaries
// alternating E O E O E O in one lock hold, each beside virtiofsd): system
// calls 64,008, 63,873, 64,587 against 79,181, 78,714, 78,573 (5.3 -> 4.3
// per request; virtiofsd 6.1); context switches 18,795, 17,549, 18,046
// against 17,962, 17,295, 17,289; task-clock 852, 750, 895 ms against
// 907, 681, 647 ms (virtiofsd's beside them 924, 726, 568 and 802, 696,
// 575 ms): the busy 2-core machine (load 3-4) shows no CPU difference in
// three pairs. BenchmarkKickToCallCPU (the fake front-end in the same
// process, 5,000 GETATTRs a round, the test binaries alternating, two
// holds of 30 rounds): process CPU per request 0.945x [0.849-1.033] and
// 0.852x [0.797-0.963] the ppoll design's, within rounds (34.0 against
// 36.1 us and 30.1 against 34.3 us, medians).
func (p *poller) thread(r *kickReader) {
	defer close(r.done)
	evs := make([]unix.EpollEvent, len(r.kicks)+1)
	var w kickWait
	for {
		now := time.Now()
		if w.yieldDue(now) {
			runtime.Gosched()
		}
		n, err := unix.EpollWait(r.ep, evs, w.timeoutMs(now))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			p.log.Error("vhost-user: waiting for kicks; ring no longer polled", "queue", r.index, "err", err)
			return
		case n == 0:
			w.timedOut(time.Now())
			continue
		}
		for _, ev := range evs[:n] {
			if ev.Fd == int32(r.stop) {
				return
			}
		}
		w.kicked(now)
		for _, ev := range evs[:n] {
			for _, k := range r.kicks {
				if ev.Fd == int32(k.fd) {
					p.serve(k.index)
				}
			}
		}
	}
}

// Bounded waits while the guest is busy: a goroutine blocked in a system
// call for more than sysmon's 10 ms loses its P (retake, when every other
// P is idle), every P is then idle and sysmon sleeps until the next kick's
// exitsyscall wakes it, after which it polls at 20 us again (50 sleeps of
// 20 us, then doubling up to 10 ms: about 60 nanosleeps per retake). So
// after a kick the queue thread's waits are bounded (a new syscalltick
// each) and it passes through the scheduler every kickYieldEvery (a new
// schedtick, yieldDue; 5 ms slices until the yield deadline, whose
// numbers are at kickWait), so sysmon has no reason to retake while kicks
// come; only once kickWaitQuiet passed without a kick (the guest went
// quiet) does it wait without a timeout, so an idle server makes no
// wake-ups. The numbers below are the 5 ms slices' with ppoll.
//
// Measured (guestbench stat, find+stat of 15,000 files, 14,863 requests,
// TCG guest, serve --readdirplus auto with the tap, default settings;
// perf stat -p of the backend; new and old alternating N O N O N O in one
// lock hold on the busy 2-core machine, each beside virtiofsd in its run):
// nanosleep 17,041, 16,616, 14,952 -> 1,014, 947, 811 (1.1 -> 0.06 per
// request); futex 11,471, 11,675, 11,509 -> 2,698, 3,063, 2,436;
// task-clock 1,190, 1,227, 1,031 ms -> 846, 940, 723 ms (-25%); backend
// CPU over virtiofsd's 1.50x, 1.33x, 1.22x against 1.54x, 1.74x, 1.55x.
// Wall over virtiofsd's 1.26x, 1.11x, 1.10x against 1.01x, 1.06x, 0.97x:
// no gain, and three samples on this machine cannot tell a loss from
// noise. The bounded ppoll alone (no yield; an earlier hold, three pairs)
// did not help: nanosleep 15,884-24,300 against 14,275-15,502, CPU ratio
// 1.77x-2.13x against 1.42x-1.72x, since sysmon retook the P on its stale
// schedtick however often the ppoll returned.
// Create (5,000 create+unlink, 30,006 requests; N O N O, then a 64 MiB
// read N O, the same hold): nanosleep 18,330 and 29,401 -> 1,255 and
// 1,541, but futex 2,034 and 3,458 -> 3,941 and 3,825: each Gosched
// (about 200 a second while kicks come) calls wakep, which wakes an M
// to spin on the idle P and find nothing. task-clock 1,437 and 2,399 ms
// against 1,721 and 2,014 ms, CPU over virtiofsd's 1.18x and 1.61x
// against 1.42x and 1.36x: no difference this machine can show. Read:
// 0.24 s against 0.31 s of backend CPU (1.20x against 1.48x virtiofsd's),
// one pair. Not tried: fewer yields (each is due only once per 10 ms of
// schedtick) with the ppoll timeout cut to the next yield.
// A second stat hold, this and the pops' spare chains against 94b6391
// (N O N O N O): nanosleep 2,927, 1,148, 1,006 against 21,439, 12,297,
// 14,037; futex 3,412, 2,818, 2,782 against 9,687, 5,166, 8,747;
// task-clock 927, 872, 878 ms against 1,791, 1,127, 1,020 ms; CPU over
// virtiofsd's 1.33x, 1.38x, 1.17x against 2.73x, 1.51x, 1.71x; wall
// 1.11x, 1.29x, 1.08x against 2.12x, 0.76x, 1.26x. What is left (perf
// -F 2000 -g, one stat boot): ppoll's sleep and wake-up in the kernel
// 11.8%, the call eventfd write 8.7% (both virtiofsd's too), readDesc 7.2%
// and slowRequest 1.8% (first touches of what the vCPU wrote), LOOKUP's
// name copy 2.5% and cstring 2.4%.
//
// Tried and not kept: the yields without the bounded waits (every wait
// endless, yieldDue checked after each kick), which saves arming and
// cancelling an hrtimer per wait, something virtiofsd's ppoll without a
// timeout never does. guestbench -bin-b (no-timeout and this binary
// rotated with virtiofsd in one run; default settings, TCG guest, load
// 0.9-1.4): backend CPU new over old per boot pair, stat 1.000, 0.942,
// 0.943, then 0.865, 0.796, 1.167, 0.981, 0.949 (median 0.946), create
// 0.971, 0.843, 0.929, then 0.865, 1.136, 1.240, 0.897, 0.951 (median
// 0.94); /proc counts 10 ms ticks of 0.5-0.8 s samples. guestbench
// -profile of both, two boots each, shows why that is noise: per 1,000
// stat requests epoll_pwait 1,000 against 1,001, context switches 1,130
// against 1,129, the wait's kernel time 3.7 against 3.5 ms and its
// scheduler part 11.4 against 11.7 ms; task-clock 824 and 1,142 ms
// against 931 and 974 ms (create 1,365 and 1,887 against 1,862 and
// 1,713). The timeout almost never fires while kicks come and the timer
// costs nothing this profile can see, so the bounded wait stays for what
// it was added for (no retake in a gap between kicks).
const (
	kickYieldEvery = 9 * time.Millisecond   // under sysmon's 10 ms (forcePreemptNS)
	kickWaitQuiet  = 100 * time.Millisecond // without a kick: the queue is quiet
)

// kickWait is a queue thread's choice of wait timeout and of when to
// yield. Its zero value is a quiet queue: no timeout until the first kick.
type kickWait struct {
	busy      bool
	lastKick  time.Time // when the wait that ended in the last kick began
	lastYield time.Time
}

// yieldDue reports whether the thread should pass through the scheduler
// (runtime.Gosched) before it waits: while the queue is busy, once
// kickYieldEvery has passed since the last time. A goroutine that serves
// kicks inline never parks, so its P's schedtick stands still, and since
// Go 1.26 sysmon counts a P whose schedtick is older than 10 ms
// (forcePreemptNS) as overdue and takes it from its thread at every
// sysmon tick the thread spends in a system call, whatever syscalltick
// says (retake: sysretake). perf of the backend (find+stat of 15,000
// files in the TCG guest, bounded waits without the yield): 5,700
// exitsyscallTryGetP futex wake-ups of a deep-sleeping sysmon and 17,600
// sysmon nanosleeps in about 14,800 requests. A Gosched puts the
// goroutine through schedule and execute, which starts a new schedtick.
// sysmon dates a schedtick from when it first sees it (schedwhen), never
// before the yield, so one yield every 9 ms keeps every look under 10 ms
// old as long as the thread runs within 1 ms of its timeout; a late one
// costs retakes until the next yield, as before the yields.
//
// Each Gosched costs more than a schedtick: goschedImpl puts the goroutine
// on the global run queue and calls wakep, which wakes an idle M to spin
// on the idle P; that M often takes the goroutine first (the queue thread
// then moves to it, and the first M sleeps again in stopm), two or three
// context switches and futex calls. perf -F 4000 -g of one stat boot
// (5 ms yields): runtime.gosched_m 3.5% of the backend's CPU, sysmon 3.3%.
// Hence 9 ms rather than a slice of 5, with the wait's timeout cut to the
// time left until the next yield (timeoutMs). Measured against 5 ms
// slices (both with the edge-triggered wait; guestbench stat, 14,870
// requests, default settings, perf stat of the backend's whole run, new
// and old alternating N O N O N O in one hold beside virtiofsd): context
// switches 16,858, 16,701, 16,848 against 17,201, 17,109, 16,995; system
// calls 62,720, 62,501, 62,695 against 63,387, 63,351, 63,144; perf trace
// -s of one run each: futex 1,784 against 2,922, nanosleep (sysmon)
// 1,049 against 951. CPU: task-clock 653, 559, 699 ms against 603, 583,
// 592 ms, over virtiofsd's beside them 1.17x, 1.03x, 1.25x against 1.13x,
// 1.10x, 0.94x; BenchmarkKickToCallCPU (30 rounds alternating; it yields
// as rarely either way) 1.011x [0.917-1.128]: a saving of about 1,100
// futex calls and 300 context switches per 15,000 requests, under 2% of
// the backend's CPU by the profile above, which this machine's noise
// cannot show.
func (w *kickWait) yieldDue(now time.Time) bool {
	if !w.busy || now.Sub(w.lastYield) < kickYieldEvery {
		return false
	}
	w.lastYield = now
	return true
}

// timeoutMs is the timeout in milliseconds for a wait that begins at now:
// while kicks came recently, the time left until the next yield is due
// (rounded up; yieldDue at the same now has just yielded if none was
// left), so the wait ends in time for it; -1 (wait for ever) once the
// queue is quiet.
func (w *kickWait) timeoutMs(now time.Time) int {
	if !w.busy {
		return -1
	}
	left := w.lastYield.Add(kickYieldEvery).Sub(now)
	return max(1, int((left+time.Millisecond-1)/time.Millisecond))
}

// kicked records a kick that ended the wait begun at now: the next waits
// are bounded again.
func (w *kickWait) kicked(now time.Time) { w.busy, w.lastKick = true, now }

// timedOut records a wait that ended without a kick at now; once
// kickWaitQuiet has passed since the last kick's wait began, the queue
// counts as quiet.
func (w *kickWait) timedOut(now time.Time) {
	if now.Sub(w.lastKick) >= kickWaitQuiet {
		w.busy = false
	}
}
