// Package perfprof turns what perf records of one backend process into a
// breakdown small enough for a table: CPU time by category from `perf
// script` of a `perf record -g` (kernel time by system call, with the
// scheduler's share split out, page faults and interrupts; user time by
// what the code is: the Go runtime's scheduler, GC, allocator and system
// call glue, krunbench's packages (FUSE codec, passthrough, the tap, the
// device), or, for a C backend such as virtiofsd, the library a sample
// landed in), and the counters of a `perf stat -x,` (task-clock, context
// switches, CPU migrations, system calls by kind). guestbench -profile
// uses it; the rules are here so they can be tested on captured output.
package perfprof

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// Profile is CPU time by category, in nanoseconds (the sum of the
// samples' periods: cpu-clock's period is nanoseconds).
type Profile struct {
	Samples int
	TotalNs int64
	Ns      map[string]int64
}

// Categories name a group first ("kernel", "kernel sched", "go", "ours",
// "c"), then what; Group returns the group.
func Group(category string) string {
	g, _, _ := strings.Cut(category, ": ")
	return g
}

// frame is one line of a sample's call chain.
type frame struct {
	sym, dso string
	kernel   bool
}

// Parse reads `perf script -F comm,tid,time,event,period,ip,sym,dso`
// output of a recording with call chains (-g) and categorizes every
// cpu-clock sample; other events are ignored. goBackend says whether the
// user part is Go (krunbench) or C (virtiofsd: categorized by library).
func Parse(r io.Reader, goBackend bool) (*Profile, error) {
	p := &Profile{Ns: map[string]int64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var period int64 = -1
	var chain []frame
	flush := func() {
		if period >= 0 {
			p.Samples++
			p.TotalNs += period
			p.Ns[Categorize(chain, goBackend)] += period
		}
		period, chain = -1, chain[:0]
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == '\t' {
			if period >= 0 {
				chain = append(chain, parseFrame(line))
			}
			continue
		}
		flush()
		if n, ok := samplePeriod(line); ok {
			period = n
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.Samples == 0 {
		return nil, errors.New("perf script: no cpu-clock samples")
	}
	return p, nil
}

// samplePeriod reads a sample header ("comm tid time: period event:") and
// returns the period of a cpu-clock sample.
func samplePeriod(line string) (int64, bool) {
	i := strings.Index(line, "cpu-clock")
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(line[:i])
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	return n, err == nil
}

// parseFrame reads "\taddr sym ([kernel.kallsyms])" or "addr sym (dso)".
func parseFrame(line string) frame {
	s := strings.TrimSpace(line)
	addr, rest, _ := strings.Cut(s, " ")
	var fr frame
	if i := strings.LastIndex(rest, " ("); i >= 0 && strings.HasSuffix(rest, ")") {
		fr.sym, fr.dso = rest[:i], rest[i+2:len(rest)-1]
	} else {
		fr.sym = rest
	}
	if j := strings.LastIndex(fr.sym, "+0x"); j > 0 {
		fr.sym = fr.sym[:j]
	}
	a, _ := strconv.ParseUint(addr, 16, 64)
	fr.kernel = fr.dso == "[kernel.kallsyms]" || strings.HasPrefix(fr.dso, "[kernel.") || a >= 0xffff800000000000
	return fr
}

// Categorize names the category of one sample from its call chain, leaf
// first.
func Categorize(chain []frame, goBackend bool) string {
	if len(chain) == 0 {
		return "other: no call chain"
	}
	if chain[0].kernel {
		return kernelCategory(chain)
	}
	if name, ok := atSyscallReturn(chain, goBackend); ok {
		return "kernel (at return): " + name
	}
	if goBackend {
		return goCategory(chain)
	}
	return cCategory(chain)
}

// atSyscallReturn recognizes a user sample taken on the instruction after
// a system call: on this machine (a PVM guest) cpu-clock's timer
// interrupt is delivered when the kernel enables interrupts, often only
// on the way back to user mode, so kernel time spent with interrupts off
// (much of a context switch) is sampled there. It names the call from the
// wrapper that made it: Go's x/sys/unix or syscall function above
// Syscall6, a runtime function that is one system call, or a libc wrapper
// named after its call.
func atSyscallReturn(chain []frame, goBackend bool) (string, bool) {
	leaf := strings.TrimSuffix(chain[0].sym, ".abi0")
	if goBackend {
		if name, ok := goRuntimeSyscalls[leaf]; ok {
			return name, true
		}
		if leaf != "internal/runtime/syscall/linux.Syscall6" && !strings.HasPrefix(leaf, "syscall.RawSyscall") && !strings.HasPrefix(leaf, "syscall.rawSyscall") {
			return "", false
		}
		for _, f := range chain[1:] {
			s := strings.TrimSuffix(f.sym, ".abi0")
			if isGenericSyscall(s) {
				continue
			}
			return goCallName(s), true
		}
		return "syscall (unnamed)", true
	}
	if !strings.HasPrefix(path.Base(chain[0].dso), "libc.so") {
		return "", false
	}
	return libcSyscall(leaf)
}

// libcSyscall names the system call of a libc wrapper
// (__GI___libc_write -> write, preadv64 -> preadv).
func libcSyscall(sym string) (string, bool) {
	name := sym
	for _, p := range []string{"__GI___libc_", "__GI___", "__libc_", "__"} {
		name = strings.TrimPrefix(name, p)
	}
	name = strings.TrimSuffix(strings.TrimSuffix(name, "_nocancel"), "64")
	return name, libcSyscalls[name]
}

// isGenericSyscall: wrappers that make any system call, named by their
// caller.
func isGenericSyscall(s string) bool { return hasAnyPrefix(s, genericSyscallPrefixes) }

// genericSyscallPrefixes: the symbol prefixes isGenericSyscall matches.
var genericSyscallPrefixes = []string{"syscall.Syscall", "syscall.RawSyscall", "syscall.rawSyscall", "internal/runtime/syscall",
	"golang.org/x/sys/unix.Syscall", "golang.org/x/sys/unix.RawSyscall", "golang.org/x/sys/unix.syscall"}

// goRuntimeSyscalls: runtime functions that are one system call each.
var goRuntimeSyscalls = map[string]string{
	"runtime.futex": "futex", "runtime.usleep": "nanosleep", "runtime.osyield": "sched_yield",
	"runtime.write1": "write", "runtime.read": "read", "runtime.madvise": "madvise", "runtime.mmap": "mmap",
	"runtime.munmap": "munmap", "runtime.tgkill": "tgkill", "runtime.rtsigprocmask": "rt_sigprocmask",
	"runtime.sigaltstack": "sigaltstack", "runtime.clone": "clone", "runtime.netpollwait": "epoll_pwait",
	"runtime.epollwait": "epoll_pwait", "internal/runtime/syscall/linux.EpollWait": "epoll_pwait",
	"runtime.sysMmap": "mmap", "runtime.sysMunmap": "munmap", "runtime.getpid": "getpid", "runtime.gettid": "gettid",
}

// libcSyscalls: libc wrappers named after the one system call they make.
var libcSyscalls = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`read write pread pwrite preadv pwritev preadv2 pwritev2 readv writev poll ppoll
		epoll_wait epoll_pwait open openat close statx stat fstat lstat fstatat newfstatat getdents unlink unlinkat
		mkdir mkdirat rmdir renameat renameat2 linkat symlinkat readlinkat fchmod fchmodat fchown fchownat utimensat
		futex nanosleep clock_nanosleep sched_yield setresuid setresgid setfsuid setfsgid getuid geteuid getgid
		getegid dup dup2 dup3 fcntl ioctl fsync fdatasync fallocate ftruncate lseek fstatfs statfs name_to_handle_at
		open_by_handle_at eventfd_write eventfd_read recvmsg sendmsg syscall mprotect mmap munmap madvise brk
		getxattr fgetxattr setxattr fsetxattr listxattr flistxattr removexattr fremovexattr copy_file_range flock`) {
		libcSyscalls[n] = true
	}
}

// kernelCategory: the system call the sample is in (the outermost
// __x64_sys_*/__do_sys_* frame, else the user frame that entered the
// kernel), split into the scheduler's part (switching, sleeping, waking
// others: "kernel sched") and the rest ("kernel"); page faults and
// interrupts outside system calls on their own.
func kernelCategory(chain []frame) string {
	sched, fault, irq := false, false, false
	call := ""
	for _, f := range chain {
		if !f.kernel {
			if call == "" && (sched || hasSyscallEntry(chain)) {
				call = callerName(chain)
			}
			break
		}
		s := f.sym
		if name, ok := syscallName(s); ok {
			call = name // keep the outermost
		}
		switch {
		case isSchedSym(s):
			sched = true
		case strings.Contains(s, "page_fault") || s == "handle_mm_fault":
			fault = true
		case strings.HasPrefix(s, "asm_sysvec_") || strings.HasPrefix(s, "asm_common_interrupt") || s == "__do_softirq" || s == "irq_exit_rcu":
			irq = true
		}
	}
	if call == "" && hasSyscallEntry(chain) {
		call = "syscall (unnamed)"
	}
	switch {
	case call != "" && sched:
		return "kernel sched: " + call
	case call != "":
		return "kernel: " + call
	case fault:
		return "kernel: page faults"
	case sched:
		return "kernel sched: outside system calls (preemption, return to user)"
	case irq:
		return "kernel: interrupts"
	}
	return "kernel: other"
}

func hasSyscallEntry(chain []frame) bool {
	for _, f := range chain {
		if f.kernel && (f.sym == "do_syscall_64" || strings.HasPrefix(f.sym, "entry_SYSCALL_64")) {
			return true
		}
	}
	return false
}

// syscallName reads a system call's name from its kernel entry point.
func syscallName(sym string) (string, bool) {
	for _, p := range []string{"__x64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_"} {
		if name, ok := strings.CutPrefix(sym, p); ok && name != "" {
			return name, true
		}
	}
	return "", false
}

// isSchedSym: the scheduler's own functions, those that switch, sleep and
// wake tasks.
func isSchedSym(s string) bool { return hasAnyPrefix(s, kernelSchedPrefixes) }

// kernelSchedPrefixes: the symbol prefixes isSchedSym matches.
var kernelSchedPrefixes = []string{"__schedule", "schedule", "finish_task_switch", "__switch_to", "switch_mm",
	"try_to_wake_up", "ttwu_", "wake_up_q", "__wake_up", "select_task_rq", "enqueue_task", "dequeue_task",
	"pick_next_task", "put_prev_task", "set_next_entity", "update_curr", "update_load_avg", "psi_task_",
	"activate_task", "check_preempt", "resched_curr", "sched_ttwu_pending", "pvm_sched", "context_switch"}

// callerName names the user function that entered the kernel: the first
// user frame that is not a generic system call wrapper, lower-cased for
// Go (x/sys/unix.EpollWait -> unix.epollwait would read oddly, so only
// the function: epollwait).
func callerName(chain []frame) string {
	for _, f := range chain {
		if f.kernel {
			continue
		}
		s := strings.TrimSuffix(f.sym, ".abi0")
		if isGenericSyscall(s) {
			continue
		}
		if name, ok := goRuntimeSyscalls[s]; ok {
			return name
		}
		if strings.Contains(s, ".") {
			return goCallName(s)
		}
		if name, ok := libcSyscall(s); ok {
			return name
		}
		return "via " + userName(s)
	}
	return "via [unknown]"
}

// goCallName is the system call a Go wrapper makes, from its name
// (golang.org/x/sys/unix.EpollWait -> epoll_pwait).
func goCallName(s string) string {
	base := userName(s)
	if i := strings.LastIndex(base, "."); i >= 0 {
		base = base[i+1:]
	}
	base = strings.ToLower(base)
	if n, ok := goWrapperSyscalls[base]; ok {
		return n
	}
	return base
}

// goWrapperSyscalls: Go wrapper names (lower case) whose system call is
// named otherwise.
var goWrapperSyscalls = map[string]string{
	"epollwait": "epoll_pwait", "getdents": "getdents64", "pread": "pread64", "pwrite": "pwrite64",
	"fstatat": "newfstatat", "fstat": "newfstat", "lstat": "newfstatat", "stat": "newfstatat",
	"nametohandleat": "name_to_handle_at", "openbyhandleat": "open_by_handle_at", "setresuid": "setresuid",
	"fgetxattr": "fgetxattr", "eventfd": "eventfd2", "epollctl": "epoll_ctl", "renameat2": "renameat2",
	"preadv": "preadv", "pwritev": "pwritev", "copyfilerange": "copy_file_range", "syncfilerange": "sync_file_range",
	"utimensat": "utimensat", "fchmodat": "fchmodat", "fchownat": "fchownat", "mkdirat": "mkdirat",
	"unlinkat": "unlinkat", "readlinkat": "readlinkat", "symlinkat": "symlinkat", "linkat": "linkat",
	"mknodat": "mknodat", "fstatfs": "fstatfs", "preadvsyscall": "preadv", "pwritevsyscall": "pwritev",
	"statat": "newfstatat", "statfs": "statfs", "fsync": "fsync", "fdatasync": "fdatasync",
}

// userName is a user frame's function, short: a Go symbol's last path
// element (golang.org/x/sys/unix.EpollWait -> unix.EpollWait), or a C
// symbol.
func userName(sym string) string {
	if sym == "" || sym == "[unknown]" {
		return "[unknown]"
	}
	return path.Base(strings.TrimSuffix(sym, ".abi0"))
}

// Go: krunbench's packages by import path (the module is
// github.com/krunbench/krunbench).
var oursPkgs = []struct{ prefix, category string }{
	{"virtiofs/fuse.", "ours: fuse codec and dispatch"},
	{"virtiofs/passthrough.", "ours: passthrough"},
	{"virtiofs/trace.", "ours: tap"},
	{"virtiofs/vhostuser.", "ours: vhost-user (queue thread, vring)"},
	{"virtiofs/overlay.", "ours: overlay"},
	{"virtiofs/rules.", "ours: rules"},
	{"virtiofs.", "ours: device (pop, dispatch, workers)"},
	{"vmm/virtio.", "ours: virtqueue"},
}

const module = "github.com/krunbench/krunbench/"

// goCategory: the first frame from the leaf that says something: runtime
// memory helpers and the standard library (not the runtime) take their
// caller's category; the runtime is split by what its chain is doing.
func goCategory(chain []frame) string {
	for _, f := range chain {
		if strings.HasPrefix(f.sym, "runtime.sysmon") {
			return "go: sysmon"
		}
	}
	for _, f := range chain {
		if isGCSym(f.sym) {
			return "go: GC"
		}
	}
	for _, f := range chain {
		s := strings.TrimSuffix(f.sym, ".abi0")
		switch {
		case strings.HasPrefix(s, module):
			rest := strings.TrimPrefix(s, module)
			for _, p := range oursPkgs {
				if strings.HasPrefix(rest, p.prefix) {
					return p.category
				}
			}
			return "ours: other (" + strings.SplitN(rest, ".", 2)[0] + ")"
		case isSyscallGlue(s):
			return "go: system call entry and exit"
		case strings.HasPrefix(s, "runtime."):
			if isRuntimeHelper(s) {
				continue
			}
			if isAllocSym(s) {
				return "go: allocation"
			}
			if isGoSchedSym(s) {
				return "go: scheduler (park, ready, wake, find work)"
			}
			return "go: runtime, other"
		}
	}
	return "go: other (no runtime or krunbench frame)"
}

func isGCSym(s string) bool { return hasAnyPrefix(s, gcPrefixes) }

// gcPrefixes: the symbol prefixes isGCSym matches.
var gcPrefixes = []string{"runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.gcStart", "runtime.bgsweep",
	"runtime.bgscavenge", "runtime.markroot", "runtime.scanobject", "runtime.gcAssistAlloc", "runtime.sweepone",
	"runtime.gcMarkDone", "runtime.gcMarkTermination", "runtime.(*gcWork)", "runtime.(*mheap).reclaim",
	"runtime.gcMark", "runtime.greyobject", "runtime.scanstack", "runtime.gcFlushBgCredit"}

func isSyscallGlue(s string) bool { return hasAnyPrefix(s, syscallGluePrefixes) }

// syscallGluePrefixes: the symbol prefixes isSyscallGlue matches.
var syscallGluePrefixes = []string{"runtime.entersyscall", "runtime.reentersyscall", "runtime.exitsyscall",
	"syscall.Syscall", "syscall.RawSyscall", "syscall.rawSyscall", "syscall.rawVforkSyscall",
	"internal/runtime/syscall", "golang.org/x/sys/unix.Syscall", "golang.org/x/sys/unix.RawSyscall",
	"golang.org/x/sys/unix.", "syscall.", "runtime/internal/syscall."}

// isRuntimeHelper: runtime functions that work for their caller (copies,
// clears, compares, hashes) rather than for the runtime.
func isRuntimeHelper(s string) bool {
	// Allocation helpers count as allocation, not as their caller's: the
	// caller frame decides only for pure helpers.
	return hasAnyPrefix(s, runtimeHelperPrefixes) && !isAllocSym(s)
}

// runtimeHelperPrefixes: the symbol prefixes isRuntimeHelper matches.
var runtimeHelperPrefixes = []string{"runtime.memmove", "runtime.memclr", "runtime.memequal", "runtime.cmpstring",
	"runtime.duff", "runtime.aeshash", "runtime.memhash", "runtime.strhash", "runtime.nilinterhash",
	"runtime.interhash", "runtime.typedmemmove", "runtime.typedmemclr", "runtime.bulkBarrierPreWrite",
	"runtime.wbBuf", "runtime.gcWriteBarrier", "runtime.wbMove", "runtime.concatstring", "runtime.slicebytetostring",
	"runtime.intstring", "runtime.mapaccess", "runtime.mapassign", "runtime.mapdelete", "runtime.panicIndex",
	"runtime.convT", "runtime.assertE2I", "runtime.typeAssert", "runtime.getitab", "runtime.nanotime",
	"runtime.walltime", "runtime.vdsoCall", "runtime.morestack", "runtime.newstack", "runtime.procyield",
	"runtime.cputicks", "runtime.deferreturn", "runtime.growslice", "runtime.makeslice", "runtime.newobject",
	"runtime.rawbyteslice", "runtime.rawstring", "runtime.stringtoslicebyte"}

func isAllocSym(s string) bool { return hasAnyPrefix(s, allocPrefixes) }

// allocPrefixes: the symbol prefixes isAllocSym matches.
var allocPrefixes = []string{"runtime.mallocgc", "runtime.newobject", "runtime.makeslice", "runtime.growslice",
	"runtime.nextFreeFast", "runtime.(*mcache)", "runtime.(*mcentral)", "runtime.(*mspan)", "runtime.(*mheap)",
	"runtime.rawbyteslice", "runtime.rawstring", "runtime.heapSetType", "runtime.publicationBarrier"}

func isGoSchedSym(s string) bool { return hasAnyPrefix(s, goSchedPrefixes) }

// goSchedPrefixes: the symbol prefixes isGoSchedSym matches.
var goSchedPrefixes = []string{"runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.gosched",
	"runtime.goschedImpl", "runtime.mcall", "runtime.gopark", "runtime.goready", "runtime.ready",
	"runtime.wakep", "runtime.startm", "runtime.stopm", "runtime.notesleep", "runtime.notewakeup",
	"runtime.futex", "runtime.runq", "runtime.globrunq", "runtime.stealWork", "runtime.execute",
	"runtime.gogo", "runtime.netpoll", "runtime.checkTimers", "runtime.resetspinning", "runtime.handoffp",
	"runtime.acquirep", "runtime.releasep", "runtime.mPark", "runtime.semasleep", "runtime.semawakeup",
	"runtime.lock", "runtime.unlock", "runtime.chansend", "runtime.chanrecv", "runtime.selectgo",
	"runtime.send", "runtime.recv", "runtime.goexit", "runtime.newproc", "runtime.casgstatus",
	"runtime.mstart", "runtime.(*timer", "runtime.(*timers", "runtime.Gosched", "runtime.usleep",
	"runtime.osyield", "runtime.entersyscallblock", "runtime.preempt", "runtime.asyncPreempt",
	"runtime.sigtramp", "runtime.sighandler", "runtime.sigreturn", "runtime.(*waitq)", "runtime.sema",
	"runtime.(*semaRoot)", "runtime.semacquire", "runtime.semrelease", "runtime.nanotime1"}

// cCategory: a C backend's user time by the library the leaf is in.
func cCategory(chain []frame) string {
	f := chain[0]
	base := path.Base(f.dso)
	switch {
	case strings.HasPrefix(base, "libc.so") || strings.HasPrefix(base, "libc-"):
		return "c: libc"
	case strings.HasPrefix(base, "libglib"):
		return "c: glib"
	case strings.HasPrefix(base, "ld-linux") || strings.HasPrefix(base, "ld-"):
		return "c: dynamic loader"
	case base == "[vdso]":
		return "c: vdso (clock_gettime)"
	case strings.HasPrefix(base, "lib"):
		return "c: " + strings.SplitN(base, ".so", 2)[0]
	case f.dso == "" || base == "[unknown]":
		return "c: unknown"
	}
	return "c: own code (" + base + ")"
}

// Stat is what guestbench's `perf stat -x,` counts.
type Stat struct {
	TaskClockMs     float64
	ContextSwitches int64
	Migrations      int64
	PageFaults      int64
	Syscalls        int64
	// SyscallsByName counts syscalls:sys_enter_NAME events, zeros left out.
	SyscallsByName map[string]int64
}

// Calls is the sum of the per-call counts. With all 360
// syscalls:sys_enter_* events raw_syscalls:sys_enter (Syscalls) read
// 2-12% lower than it, its enabled time (perf stat's fourth column) some
// 16 ms shorter after the same enable command; with a short list the sum
// is a part and Syscalls the whole.
func (st *Stat) Calls() int64 {
	var n int64
	for _, v := range st.SyscallsByName {
		n += v
	}
	if n == 0 {
		return st.Syscalls
	}
	return n
}

// ParseStat reads `perf stat -x, -o FILE` output (value,unit,event,...).
func ParseStat(r io.Reader) (*Stat, error) {
	st := &Stat{SyscallsByName: map[string]int64{}}
	sc := bufio.NewScanner(r)
	seen := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // "<not counted>", "<not supported>"
		}
		seen = true
		switch ev := strings.TrimSuffix(f[2], ":u"); {
		case ev == "task-clock":
			st.TaskClockMs = v
		case ev == "context-switches" || ev == "cs":
			st.ContextSwitches = int64(v)
		case ev == "cpu-migrations" || ev == "migrations":
			st.Migrations = int64(v)
		case ev == "page-faults" || ev == "faults":
			st.PageFaults = int64(v)
		case ev == "raw_syscalls:sys_enter":
			st.Syscalls = int64(v)
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			if v > 0 {
				st.SyscallsByName[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = int64(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !seen {
		return nil, fmt.Errorf("perf stat: no counts")
	}
	return st, nil
}

// hasAnyPrefix says whether s starts with one of prefixes.
func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
