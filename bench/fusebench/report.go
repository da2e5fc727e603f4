package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// Targets, reported rather than asserted.
const (
	targetRatio       = 1.0
	targetOverheadPct = 5.0
)

// The file's types are bench/internal/results' (summary and tuibench
// read with them); fusebench's own mode and row carry what it runs too.
type (
	measure = schema.Measure
	series  = schema.Series
	paired  = schema.Paired
)

type row struct {
	*workload
	schema.RowStats
}

// pairOf applies f to the samples of a and b round by round; nil when
// either mode is missing or f never yields a value.
func pairOf(a, b *series, f func(a, b measure) (float64, bool)) *paired {
	if a == nil || b == nil {
		return nil
	}
	var vals []float64
	for i := range min(len(a.Samples), len(b.Samples)) {
		if v, ok := f(a.Samples[i], b.Samples[i]); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	slices.Sort(vals)
	return &paired{Median: hostinfo.Median(vals), P25: vals[len(vals)/4], P75: vals[(3*len(vals))/4], Rounds: len(vals)}
}

// speedRatio is a's throughput over b's.
func speedRatio(a, b measure) (float64, bool) { return a.Value / b.Value, b.Value > 0 }

// extraTimePct is how much longer a took than b, in percent.
func extraTimePct(a, b measure) (float64, bool) {
	return 100 * (a.Seconds/b.Seconds - 1), b.Seconds > 0
}

// extraCPUPct is how much more server CPU a used than b, in percent.
func extraCPUPct(a, b measure) (float64, bool) {
	return 100 * (a.ServerCPU/b.ServerCPU - 1), b.ServerCPU > 0
}

type (
	target   = schema.Target
	traceRun = schema.TraceRun
	machine  = schema.Machine
)

type results struct {
	cfg *config
	schema.Fuse[*mode, *row]
}

func newResults(cfg *config, info machine, modes map[string]*mode, wls []*workload) *results {
	r := &results{cfg: cfg}
	r.Machine, r.Traces = info, map[string][]traceRun{}
	r.Config.Runs, r.Config.SizeBytes = cfg.runs, cfg.size
	r.Config.Dirs, r.Config.FilesPerDir, r.Config.Creates = cfg.dirs, cfg.filesPerDir, cfg.creates
	r.Config.Bin = cfg.bin
	r.Config.Clients, r.Config.ConcFiles, r.Config.ConcCreates, r.Config.ConcReads = cfg.clients, cfg.concFiles, cfg.concCreates, cfg.concReads
	r.Config.ConcFileSize, r.Config.MixedSize, r.Config.MixedProbes = cfg.concFileSize, cfg.mixedSize, cfg.mixedProbes
	r.Config.MemFiles, r.Config.Quick = cfg.memFiles, cfg.quick
	r.Settings, r.Label = cfg.settings, cfg.label
	r.Config.Order = "every mode is mounted side by side for the whole run; a round runs each workload in every mode back to back, in an order rotated every two rounds and reversed in odd rounds; ratios and overheads are taken within each round, then their median over rounds"
	r.Config.CacheDrop = "sync; echo 3 > /proc/sys/vm/drop_caches before every sample, then wait for every server's CPU time to stop moving; free page reporting (virtio-balloon) off for the run, see memory.go"
	if cfg.keepBalloon {
		// Tuned runs with -keep-balloon: reporting stays on, so the
		// label must not say it was off (it did before, while the
		// samples' prefault fields showed -cold-memory at work).
		r.Config.CacheDrop = "sync; echo 3 > /proc/sys/vm/drop_caches before every sample, then wait for every server's CPU time to stop moving; free page reporting (virtio-balloon) left bound (-keep-balloon, machine.balloons_reporting_bound)"
	}
	if cfg.settings == settingsDefault {
		r.Config.Order = "cold rows: every FUSE sample on a server process and mount started for it and stopped after it; -warm rows: every mode mounted side by side for the rest of the run. A round runs each workload in every mode back to back, in an order rotated every two rounds and reversed in odd rounds; ratios are taken within each round, then their median over rounds"
		r.Config.CacheDrop = "sync; echo 3 > /proc/sys/vm/drop_caches before every sample, then wait for the servers' CPU time to stop moving; fs.pipe-max-size and the virtio-balloon left as the system has them (machine.pipe_max_size, machine.balloons_reporting_bound)"
	}
	if cfg.keepBalloon {
		r.Config.ColdMemory = cfg.coldMemory
		if len(reportingBalloons()) > 0 {
			r.Config.CacheDrop += "; then, with -cold-memory " + cfg.coldMemory + ": " + coldMemoryDesc[cfg.coldMemory]
		}
	}
	r.Config.Caching = []string{
		"krunbench: entry and attr timeouts 1s (passthrough.DefaultTimeout, used because serve passes zero Options), max_write and max_pages 1 MiB where its pipes grow to 2 MiB, else as large as they splice (512 KiB with fs.pipe-max-size 1 MiB), max_background 256, congestion_threshold 192, allow_other, no default_permissions, no writeback cache (mode writeback: serve --writeback), READDIRPLUS for every directory chunk (serve's default --readdirplus always)",
		"go-fuse loopback: EntryTimeout and AttrTimeout 1s, MaxWrite 1 MiB (max_pages follows), MaxBackground 256, CongestionThreshold 192, AllowOther, no default_permissions, no writeback cache, DirectMountStrict; splice for READ (go-fuse default), always READDIRPLUS; FUSE passthrough (CAP_PASSTHROUGH, which go-fuse enables by default for root on kernel 6.9+) disabled in go-fuse (e) and enabled only in the informational go-fuse-pt mode",
		"passthrough_hp: as shipped: entry and attr timeouts 86400 s, writeback cache (FUSE_CAP_WRITEBACK_CACHE: the kernel gathers WRITEs in its page cache and fsync flushes them), keep_cache on open, default_permissions, splice read and write, libfuse's multithreaded loop, one O_PATH fd per known inode",
	}
	for _, name := range cfg.modes {
		r.Modes = append(r.Modes, modes[name])
	}
	for _, w := range wls {
		r.Rows = append(r.Rows, &row{workload: w, RowStats: schema.RowStats{Modes: map[string]*series{}}})
	}
	return r
}

func (r *results) row(name string) *row {
	for _, x := range r.Rows {
		if x.Name == name {
			return x
		}
	}
	return nil
}

func (r *results) add(wl, mode string, m measure) {
	x := r.row(wl)
	s := x.Modes[mode]
	if s == nil {
		s = &series{}
		x.Modes[mode] = s
	}
	s.Samples = append(s.Samples, m)
}

func (r *results) addTrace(mode string, t traceRun) {
	r.Traces[mode] = append(r.Traces[mode], t)
}

func traceInfo(path, logFile string) traceRun {
	t := traceRun{Dropped: traceDropped(logFile)}
	f, err := os.Open(path)
	if err != nil {
		return t
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil {
		t.Bytes = st.Size()
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t.Events++
	}
	return t
}

func ptr[T any](v T) *T { return &v }

// finish computes medians, ratios and targets.
func (r *results) finish(elapsed time.Duration) {
	r.Elapsed = elapsed.Seconds()
	r.Machine.LoadEnd = hostinfo.LoadAvg()
	goFuseTarget := targetRatio
	if r.Settings == settingsDefault {
		goFuseTarget = targetOverGoFuse
	}
	ratio := &target{Description: fmt.Sprintf("ours >= %.1fx go-fuse on every row: median over rounds of tap (c) throughput / go-fuse throughput >= %.2f", goFuseTarget, goFuseTarget), Rows: map[string]bool{}}
	overPtHP := &target{Description: fmt.Sprintf("ours >= %.1fx passthrough_hp on every row: median over rounds of tap (c) throughput / passthrough_hp throughput >= %.2f", targetOverPtHP, targetOverPtHP), Rows: map[string]bool{}}
	overhead := &target{Description: fmt.Sprintf("tap overhead <= %.0f%%: median over rounds of the extra time tap (c) and trace (d) take over no-tap (b)", targetOverheadPct), Rows: map[string]bool{}}
	for _, x := range r.Rows {
		for _, s := range x.Modes {
			vals := hostinfo.Pick(s.Samples, func(m measure) float64 { return m.Value })
			if len(vals) == 0 {
				continue
			}
			s.Median = hostinfo.Median(vals)
			s.Min, s.Max = slices.Min(vals), slices.Max(vals)
			if s.Median > 0 {
				s.SpreadPct = 100 * (s.Max - s.Min) / s.Median
			}
			s.MedianSeconds = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return m.Seconds }))
			s.MedianServerCPU = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return m.ServerCPU }))
		}
		b, c, d, e := x.Modes[modeNoTap], x.Modes[modeTap], x.Modes[modeTrace], x.Modes[modeGoFuse]
		if x.OursOverPtHP = pairOf(c, x.Modes[modePtHP], speedRatio); x.OursOverPtHP != nil {
			overPtHP.Rows[x.Name] = x.OursOverPtHP.Median >= targetOverPtHP
			if diff := cacheModeDiff(x.Name); diff != "" {
				x.CacheModeDiffers = map[string]string{modePtHP: diff}
			}
		}
		if x.OursOverGoFuse = pairOf(c, e, speedRatio); x.OursOverGoFuse != nil && !x.concurrent {
			ratio.Rows[x.Name] = x.OursOverGoFuse.Median >= goFuseTarget
			if e.Median > 0 {
				x.OursOverGoFuseOfMedians = ptr(c.Median / e.Median)
			}
		}
		x.finishWriteback()
		x.TapOverheadPct, x.TraceOverheadPct = pairOf(c, b, extraTimePct), pairOf(d, b, extraTimePct)
		x.TapCPUPct, x.TraceCPUPct = pairOf(c, b, extraCPUPct), pairOf(d, b, extraCPUPct)
		if x.TapOverheadPct != nil {
			overhead.Rows[x.Name+" tap"] = x.TapOverheadPct.Median <= targetOverheadPct
		}
		if x.TraceOverheadPct != nil {
			overhead.Rows[x.Name+" trace"] = x.TraceOverheadPct.Median <= targetOverheadPct
		}
	}
	r.Targets = map[string]*target{"ours_ge_gofuse": ratio, "tap_overhead_le_5pct": overhead, "ours_ge_passthrough_hp": overPtHP,
		"p99_under_writer_le_2x_idle": r.finishConcurrency()}
	for _, t := range r.Targets {
		t.Settle()
	}
}

func fmtValue(unit string, v float64) string {
	switch {
	case unit == "s":
		return fmt.Sprintf("%.3f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// fmtPct prints a paired percentage as "median [p25, p75]".
func fmtPct(p *paired) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f%% [%+.0f,%+.0f]", p.Median, p.P25, p.P75)
}

// fmtRatio prints a paired ratio as "median [p25-p75]".
func fmtRatio(p *paired) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f [%.2f-%.2f]", p.Median, p.P25, p.P75)
}

// printTable prints medians (rows: workloads, columns: modes) and the
// derived columns, then the server CPU time behind them.
func (r *results) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "unit"}
	for _, m := range r.Modes {
		head = append(head, m.Label)
	}
	head = append(head, "ours/go-fuse", "ours/pt_hp", "tap ovh (c)", "trace ovh (d)", "spread", "")
	fmt.Fprintf(w, "\nmedians of %d rounds; ours = tap (c); ours/go-fuse and the overheads (extra time over no-tap (b)) are taken within each round: median [p25, p75] over rounds; spread = largest (max-min)/median of the FUSE modes\n", r.cfg.runs)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	cell := func(x *row, m *mode, f func(*series) float64, unit string) string {
		if s := x.Modes[m.Name]; s != nil {
			return fmtValue(unit, f(s))
		}
		return "-"
	}
	for _, x := range r.Rows {
		line := []string{x.Title, x.Unit}
		for _, m := range r.Modes {
			line = append(line, cell(x, m, func(s *series) float64 { return s.Median }, x.Unit))
		}
		spread := 0.0
		for _, m := range r.Modes {
			if s := x.Modes[m.Name]; s != nil && m.fuse {
				spread = max(spread, s.SpreadPct)
			}
		}
		line = append(line, r.fmtTarget(x.OursOverGoFuse, "ours_ge_gofuse", x.Name), r.fmtTarget(x.OursOverPtHP, "ours_ge_passthrough_hp", x.Name)+cacheMark(x),
			fmtPct(x.TapOverheadPct), fmtPct(x.TraceOverheadPct), fmt.Sprintf("%.0f%%", spread), "")
		fmt.Fprintln(tw, strings.Join(line, "\t"))
		if strings.HasPrefix(x.Name, "stat") {
			line = []string{x.Title, "s"}
			for _, m := range r.Modes {
				line = append(line, cell(x, m, func(s *series) float64 { return s.MedianSeconds }, "s"))
			}
			line = append(line, "", "", "", "", "", "")
			fmt.Fprintln(tw, strings.Join(line, "\t"))
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nserver CPU seconds per sample (median; user+system of the server process); extra CPU of tap and trace over no-tap, within rounds\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head = []string{"workload"}
	for _, m := range r.Modes {
		if m.fuse {
			head = append(head, m.Label)
		}
	}
	fmt.Fprintln(tw, strings.Join(append(head, "tap cpu", "trace cpu", ""), "\t"))
	for _, x := range r.Rows {
		line := []string{x.Title}
		for _, m := range r.Modes {
			if m.fuse {
				line = append(line, cell(x, m, func(s *series) float64 { return s.MedianServerCPU }, "s"))
			}
		}
		line = append(line, fmtPct(x.TapCPUPct), fmtPct(x.TraceCPUPct))
		fmt.Fprintln(tw, strings.Join(append(line, ""), "\t"))
	}
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintf(w, "settings: %s; fs.pipe-max-size %d", r.Settings, r.Machine.PipeMaxSize)
	if len(r.Machine.BalloonsReporting) > 0 {
		fmt.Fprintf(w, "; free-page-reporting balloon bound (%s): large samples can pay for faulting freed memory back in", strings.Join(r.Machine.BalloonsReporting, ", "))
	}
	fmt.Fprintln(w)
	for _, sk := range r.Skipped {
		fmt.Fprintf(w, "SKIPPED %s: %s\n", sk.Mode, sk.Reason)
	}
	fmt.Fprintln(w, "* passthrough_hp runs with the kernel's writeback cache: on rows marked * its WRITEs are gathered by the kernel before they reach it, a cache mode krunbench offers only as serve --writeback (off by default; mode writeback (f))")
	r.printWriteback(w)
	r.printConcurrency(w)
	for _, key := range []string{"ours_ge_gofuse", "ours_ge_passthrough_hp", "tap_overhead_le_5pct", "p99_under_writer_le_2x_idle"} {
		t := r.Targets[key]
		if t == nil {
			continue
		}
		verdict, misses := t.Verdict("FAIL"), t.Missed()
		fmt.Fprintf(w, "target %-44s %s", t.Description[:strings.Index(t.Description, ":")], verdict)
		if len(misses) > 0 {
			fmt.Fprintf(w, " (missed: %s)", strings.Join(misses, ", "))
		}
		fmt.Fprintln(w)
	}
	for mode, runs := range r.Traces {
		for _, t := range runs {
			fmt.Fprintf(w, "%s: trace file %d bytes, %d events, %d dropped\n", mode, t.Bytes, t.Events, t.Dropped)
		}
	}
}

// collectInfo describes the machine and the build under test.
func collectInfo(cfg *config, workdir string) machine {
	m := machine{
		NProc:   runtime.NumCPU(),
		Go:      runtime.Version(),
		Date:    time.Now().UTC().Format(time.RFC3339),
		Workdir: workdir,
	}
	m.Kernel = hostinfo.Kernel()
	m.CPU = hostinfo.ProcField("/proc/cpuinfo", "model name")
	m.LoadStart = hostinfo.LoadAvg()
	m.BusyStart = hostinfo.CPUBusy(time.Second)
	m.MemTotal = hostinfo.ProcField("/proc/meminfo", "MemTotal")
	m.WorkdirFS = hostinfo.FSType(workdir)
	m.Krunbench = hostinfo.Commit(filepath.Dir(filepath.Dir(cfg.bin)))
	return m
}

func goFuseVersion(goCmd string) string {
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Version}}", "github.com/hanwen/go-fuse/v2").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// fmtTarget prints a paired ratio with its target's verdict for the row.
func (r *results) fmtTarget(p *paired, key, rowName string) string {
	if p == nil {
		return "-"
	}
	t := r.Targets[key]
	if t == nil {
		return fmtRatio(p)
	}
	ok, judged := t.Rows[rowName]
	if !judged { // a ratio shown for information (e.g. go-fuse on the concurrency rows)
		return fmtRatio(p)
	}
	return fmtRatio(p) + map[bool]string{true: " PASS", false: " MISS"}[ok]
}

// cacheModeDiff says why passthrough_hp's row may differ by cache mode
// rather than by server, or "" where both run with the same caching in
// effect (every sample starts after drop_caches, so the longer entry
// timeouts and keep_cache have nothing cached to reuse).
func cacheModeDiff(rowName string) string {
	if strings.HasPrefix(rowName, "write") || rowName == rowMixed {
		return "writeback cache: the kernel gathers the writes in its page cache and sends them on fsync and in the background; krunbench and go-fuse see every write(2)"
	}
	return ""
}

// cacheMark marks rows whose passthrough_hp ratio comes partly from its
// cache mode.
func cacheMark(x *row) string {
	if x.CacheModeDiffers[modePtHP] != "" {
		return "*"
	}
	return ""
}
