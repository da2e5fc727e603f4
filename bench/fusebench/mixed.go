package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/bench/internal/fsops"
)

// The mixed row (issue 15, item 2): a stat-only client alone, then beside
// one sequential writer (write() of -mixed-size, then fsync).
//
// Besides the judged p99 (every call under the writer), each sample
// splits the calls under the writer at the writer's last write(): the
// write() phase (the client's page cache filling, without the writeback
// cache every WRITE synchronous through the server) and the fsync phase.
// The two phases' latencies differ by up to 10x, so the row's p99
// follows how many calls land in which: see virtiofs/fusedev/workers.go.
//
// With -mixed-runq the client also reads its own thread's runqueue wait
// (the second field of /proc/thread-self/schedstat, in ns) before and
// after every call, outside the timed interval, and reports which share
// of its slowest 1% of calls under the writer it spent runnable but
// without a CPU.

// probe is one timed call under the writer: when it started (ns after
// the writer started), how long it took and how long of that its thread
// waited for a CPU (0 without -mixed-runq).
type probe struct {
	at, took, runq time.Duration
}

// runqReader reads the calling thread's runqueue wait; the caller stays
// locked to its OS thread while it uses one.
type runqReader struct {
	fd  int
	buf [128]byte
}

// openRunq opens /proc/thread-self/schedstat for the calling thread.
func openRunq() (*runqReader, error) {
	fd, err := unix.Open("/proc/thread-self/schedstat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("-mixed-runq: %w", err)
	}
	return &runqReader{fd: fd}, nil
}

// wait is the thread's total time runnable but not running, so far.
func (r *runqReader) wait() (time.Duration, error) {
	n, err := unix.Pread(r.fd, r.buf[:], 0)
	if err != nil {
		return 0, fmt.Errorf("read schedstat: %w", err)
	}
	return parseSchedstat(string(r.buf[:n]))
}

func (r *runqReader) close() { unix.Close(r.fd) }

// parseSchedstat reads the runqueue wait (ns) from a schedstat line:
// "<on-cpu ns> <runqueue wait ns> <timeslices>".
func parseSchedstat(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("schedstat %q: want at least 2 fields", line)
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("schedstat %q: bad runqueue wait", line)
	}
	return time.Duration(ns), nil
}

// runMixed measures the small client alone, then beside the writer.
func runMixed(cfg *config, dir string, stop <-chan struct{}) (outcome, error) {
	probes := filepath.Join(dir, probeDir)
	var rq *runqReader
	if cfg.mixedRunq {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var err error
		if rq, err = openRunq(); err != nil {
			return outcome{}, err
		}
		defer rq.close()
	}
	var seq int
	call := func() (took, runq time.Duration, err error) {
		seq++
		p := fmt.Sprintf("%s/absent-%d", probes, seq)
		var st unix.Stat_t
		var w0, w1 time.Duration
		if rq != nil {
			if w0, err = rq.wait(); err != nil {
				return 0, 0, err
			}
		}
		t0 := time.Now()
		lerr := unix.Lstat(p, &st)
		took = time.Since(t0)
		if rq != nil {
			if w1, err = rq.wait(); err != nil {
				return 0, 0, err
			}
		}
		if lerr != unix.ENOENT {
			return took, 0, fmt.Errorf("lstat %s: %v, want ENOENT", p, lerr)
		}
		return took, w1 - w0, nil
	}
	idle := make([]time.Duration, 0, cfg.mixedProbes)
	for range cfg.mixedProbes {
		d, _, err := call()
		if err != nil {
			return outcome{}, err
		}
		idle = append(idle, d)
	}
	if fsops.Stopped(stop) {
		return outcome{}, errStopped
	}
	done := make(chan error, 1)
	var fsyncAt atomic.Int64
	t0 := time.Now()
	go func() { done <- writeFileAt(filepath.Join(dir, mixedName), cfg.mixedSize, stop, &fsyncAt) }()
	busy := make([]probe, 0, 4*cfg.mixedProbes)
	var werr error
	for running := true; running; {
		select {
		case werr = <-done:
			running = false
			continue
		default:
		}
		at := time.Since(t0)
		d, runq, err := call()
		if err != nil {
			<-done
			return outcome{}, err
		}
		busy = append(busy, probe{at: at, took: d, runq: runq})
	}
	secs := time.Since(t0).Seconds()
	if werr != nil {
		return outcome{}, fmt.Errorf("writer: %w", werr)
	}
	if len(busy) == 0 {
		return outcome{}, errors.New("the stat client made no call while the writer ran")
	}
	writeEnd := time.Duration(fsyncAt.Load() - t0.UnixNano())
	lat := mixedLatency(idle, busy, writeEnd, rq != nil)
	return outcome{Units: float64(cfg.mixedSize) / 1e6, Seconds: secs, Latency: lat}, nil
}

// mixedLatency summarises the idle calls and those under the writer,
// whose write() phase ended writeEnd after it started; withRunq says
// whether the calls carry their runqueue wait.
func mixedLatency(idle []time.Duration, busy []probe, writeEnd time.Duration, withRunq bool) *latency {
	all := make([]time.Duration, len(busy))
	var wr, fs []time.Duration
	for i, p := range busy {
		all[i] = p.took
		// A call that started before the last write() returned is
		// counted in the write() phase.
		if p.at < writeEnd {
			wr = append(wr, p.took)
		} else {
			fs = append(fs, p.took)
		}
	}
	lat := &latency{
		IdleP50Us: pctUs(idle, 50), IdleP99Us: pctUs(idle, 99), IdleCalls: len(idle),
		BusyP50Us: pctUs(all, 50), BusyP99Us: pctUs(all, 99), BusyCalls: len(all),
		BusyMaxUs:         pctUs(all, 100),
		WritePhaseCalls:   len(wr),
		WritePhaseSeconds: writeEnd.Seconds(),
		FsyncPhaseCalls:   len(fs),
	}
	if len(wr) > 0 {
		lat.WritePhaseP99Us = pctUs(wr, 99)
	}
	if len(fs) > 0 {
		lat.FsyncPhaseP99Us = pctUs(fs, 99)
	}
	if withRunq {
		pct := slowRunqPct(busy)
		lat.SlowRunqPct = &pct
	}
	return lat
}

// slowRunqPct is, over the slowest 1% of calls (at least one), the share
// of their time their thread spent waiting for a CPU, in percent.
func slowRunqPct(busy []probe) float64 {
	s := slices.Clone(busy)
	slices.SortFunc(s, func(a, b probe) int { return int(b.took - a.took) })
	s = s[:max(1, len(s)/100)]
	var took, runq time.Duration
	for _, p := range s {
		took += p.took
		runq += min(p.runq, p.took)
	}
	if took <= 0 {
		return 0
	}
	return 100 * float64(runq) / float64(took)
}

// mixedUsesRunq fails early when -mixed-runq cannot work here.
func mixedUsesRunq() error {
	if _, err := os.Stat("/proc/thread-self/schedstat"); err != nil {
		return fmt.Errorf("-mixed-runq needs /proc/thread-self/schedstat (CONFIG_SCHED_INFO): %w", err)
	}
	return nil
}
