package perfprof

import (
	"os"
	"strings"
	"testing"
)

// chain builds a call chain, leaf first, from "sym (dso)" strings as
// perf script prints them.
func chain(lines ...string) []frame {
	var c []frame
	for _, l := range lines {
		addr := "4a2f10"
		if strings.HasSuffix(l, "([kernel.kallsyms])") {
			addr = "ffffffff81000000"
		}
		c = append(c, parseFrame("\t"+addr+" "+l))
	}
	return c
}

func TestCategorize(t *testing.T) {
	const k, bin = "([kernel.kallsyms])", "(/work/main/bin/krunbench)"
	for _, tc := range []struct {
		name  string
		goBin bool
		chain []frame
		want  string
	}{
		{"epoll sleep", true, chain("finish_task_switch.isra.0 "+k, "__schedule "+k, "schedule_hrtimeout_range_clock "+k,
			"do_epoll_wait "+k, "__x64_sys_epoll_pwait "+k, "do_syscall_64 "+k, "entry_SYSCALL_64_after_hwframe "+k,
			"internal/runtime/syscall.Syscall6 "+bin, "syscall.Syscall6 "+bin, "golang.org/x/sys/unix.EpollWait "+bin),
			"kernel sched: epoll_pwait"},
		{"eventfd write", true, chain("eventfd_write "+k, "vfs_write "+k, "ksys_write "+k, "__x64_sys_write "+k,
			"do_syscall_64 "+k, "entry_SYSCALL_64_after_hwframe "+k, "internal/runtime/syscall.Syscall6 "+bin),
			"kernel: write"},
		{"unnamed syscall", false, chain("pvm_irq_enable "+k, "do_syscall_64 "+k, "entry_SYSCALL_64_after_hwframe "+k,
			"__GI___poll (/usr/lib/x86_64-linux-gnu/libc.so.6)"), "kernel: poll"},
		{"unnamed syscall, unknown caller", false, chain("pvm_irq_enable "+k, "do_syscall_64 "+k, "[unknown] ([unknown])"), "kernel: via [unknown]"},
		{"write without its entry frame", true, chain("eventfd_write "+k, "vfs_write "+k, "ksys_write "+k, "do_syscall_64 "+k,
			"entry_SYSCALL_64_after_hwframe "+k, "internal/runtime/syscall/linux.Syscall6 "+bin, "syscall.Syscall "+bin,
			"syscall.Syscall.abi0 "+bin, "golang.org/x/sys/unix.write "+bin,
			"github.com/krunbench/krunbench/virtiofs/vhostuser.(*vring).Notify "+bin), "kernel: write"},
		{"sampled on the return from epoll_pwait", true, chain("internal/runtime/syscall/linux.Syscall6 "+bin,
			"syscall.Syscall6 "+bin, "syscall.Syscall6.abi0 "+bin, "golang.org/x/sys/unix.EpollWait "+bin,
			"github.com/krunbench/krunbench/virtiofs/vhostuser.(*poller).thread "+bin), "kernel (at return): epoll_pwait"},
		{"sampled on the return from a futex", true, chain("runtime.futex.abi0 "+bin, "runtime.futexsleep "+bin), "kernel (at return): futex"},
		{"sampled on the return from ppoll", false, chain("__GI___poll (/usr/lib/x86_64-linux-gnu/libc.so.6)",
			"[unknown] (/usr/lib/qemu/virtiofsd)"), "kernel (at return): poll"},
		{"page fault", true, chain("clear_page_erms "+k, "handle_mm_fault "+k, "exc_page_fault "+k, "asm_exc_page_fault "+k,
			"runtime.memclrNoHeapPointers "+bin), "kernel: page faults"},
		{"sysmon", true, chain("runtime.retake "+bin, "runtime.sysmon "+bin, "runtime.mstart1 "+bin), "go: sysmon"},
		{"sysmon in the kernel", true, chain("hrtimer_nanosleep "+k, "__x64_sys_nanosleep "+k, "do_syscall_64 "+k,
			"runtime.usleep.abi0 "+bin, "runtime.sysmon "+bin), "kernel: nanosleep"},
		{"memmove for the codec", true, chain("runtime.memmove "+bin,
			"github.com/krunbench/krunbench/virtiofs/fuse.(*Server).Serve "+bin), "ours: fuse codec and dispatch"},
		{"allocation", true, chain("runtime.mallocgc "+bin, "runtime.newobject "+bin,
			"github.com/krunbench/krunbench/virtiofs/passthrough.(*FS).Lookup "+bin), "go: allocation"},
		{"GC", true, chain("runtime.scanobject "+bin, "runtime.gcDrain "+bin, "runtime.gcBgMarkWorker "+bin), "go: GC"},
		{"gosched", true, chain("runtime.runqgrab "+bin, "runtime.findRunnable "+bin, "runtime.schedule "+bin,
			"runtime.goschedImpl "+bin, "runtime.gosched_m "+bin, "runtime.mcall "+bin), "go: scheduler (park, ready, wake, find work)"},
		{"syscall glue", true, chain("runtime.exitsyscall "+bin, "syscall.Syscall6 "+bin,
			"github.com/krunbench/krunbench/virtiofs/passthrough.(*FS).Lookup "+bin), "go: system call entry and exit"},
		{"tap", true, chain("github.com/krunbench/krunbench/virtiofs/trace.(*Tap).Observe " + bin), "ours: tap"},
		{"device", true, chain("github.com/krunbench/krunbench/virtiofs.(*Device).drain " + bin), "ours: device (pop, dispatch, workers)"},
		{"queue thread", true, chain("github.com/krunbench/krunbench/virtiofs/vhostuser.(*poller).thread " + bin), "ours: vhost-user (queue thread, vring)"},
		{"glib", false, chain("g_mutex_lock (/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0.7400.6)"), "c: glib"},
		{"virtiofsd", false, chain("[unknown] (/usr/lib/qemu/virtiofsd)"), "c: own code (virtiofsd)"},
	} {
		if got := Categorize(tc.chain, tc.goBin); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestParseCaptured: 80 cpu-clock samples of each backend from one
// guestbench -profile boot (find+stat of 2,000 files; perf script -F
// comm,tid,time,event,period,ip,sym,dso): every sample is counted once,
// the categories add up to the total, and each backend's time lands in
// its own kind of category with every system call named.
func TestParseCaptured(t *testing.T) {
	for _, tc := range []struct {
		file       string
		goBackend  bool
		want, not  []string // categories that must and must not appear (prefixes)
		wantSample int
	}{
		{"krunbench-stat.script", true, []string{"kernel sched: epoll_pwait", "ours: ", "kernel: write"}, []string{"c: ", "other:", "kernel: via", "kernel: syscall"}, 80},
		{"virtiofsd-stat.script", false, []string{"kernel sched: ppoll", "c: libc", "c: own code (virtiofsd)"}, []string{"go: ", "ours: ", "other:", "kernel: via", "kernel: syscall"}, 80},
	} {
		f, err := os.Open("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(f, tc.goBackend)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if p.Samples != tc.wantSample {
			t.Errorf("%s: %d samples, want %d", tc.file, p.Samples, tc.wantSample)
		}
		var sum int64
		for _, ns := range p.Ns {
			sum += ns
		}
		if sum != p.TotalNs || p.TotalNs != int64(tc.wantSample)*250000 {
			t.Errorf("%s: categories sum to %d ns, total %d, want %d (250 us a sample)", tc.file, sum, p.TotalNs, tc.wantSample*250000)
		}
		has := func(prefix string) bool {
			for c := range p.Ns {
				if strings.HasPrefix(c, prefix) {
					return true
				}
			}
			return false
		}
		for _, c := range tc.want {
			if !has(c) {
				t.Errorf("%s: no category %q in %v", tc.file, c, p.Ns)
			}
		}
		for _, c := range tc.not {
			if has(c) {
				t.Errorf("%s: category %q should not appear: %v", tc.file, c, p.Ns)
			}
		}
	}
}

// TestParseStatCaptured reads the perf stat -x, files of the same boots.
func TestParseStatCaptured(t *testing.T) {
	for _, tc := range []struct {
		file                  string
		taskMs                float64
		cs, migrations, calls int64
		topName               string
		topCount, byName      int64
	}{
		{"krunbench-stat.csv", 587.86, 2544, 45, 8393, "write", 2046, 8546},
		{"virtiofsd-stat.csv", 269.62, 2149, 0, 10056, "openat", 2013, 11396},
	} {
		f, err := os.Open("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		st, err := ParseStat(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if st.TaskClockMs != tc.taskMs || st.ContextSwitches != tc.cs || st.Migrations != tc.migrations || st.Syscalls != tc.calls {
			t.Errorf("%s: got %+v", tc.file, st)
		}
		if st.SyscallsByName[tc.topName] != tc.topCount {
			t.Errorf("%s: %s %d, want %d", tc.file, tc.topName, st.SyscallsByName[tc.topName], tc.topCount)
		}
		if got := st.Calls(); got != tc.byName {
			t.Errorf("%s: %d calls by name, want %d", tc.file, got, tc.byName)
		}
	}
}
