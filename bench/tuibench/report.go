package main

import (
	"encoding/json"
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

// fuseRow is the fusebench workload closest to this one: find+stat over
// the same 50 x 1000 tree. fuseTargetPct is fusebench's own target for
// the tap overhead.
const (
	fuseRow       = "stat"
	fuseTargetPct = 5.0
)

// The file's types are bench/internal/results', which summary reads
// with; samples are tuibench's own (TestWrittenFileReadsBack keeps the
// two in step).
type (
	machine        = schema.TUIMachine
	modeResult     = schema.TUIMode[*sample]
	uiTotal        = schema.TUITotal
	fuseComparison = schema.TUIFuseComparison
)

// results is the run as tuibench writes it (bench/results/tui.json).
type results struct {
	cfg *config
	schema.TUI[*sample]
}

func newResults(cfg *config, m machine) *results {
	r := &results{cfg: cfg, TUI: schema.TUI[*sample]{Machine: m}}
	c := &r.Config
	c.Runs, c.Dirs, c.FilesPerDir = cfg.runs, cfg.dirs, cfg.filesPerDir
	c.Entries = cfg.dirs*cfg.filesPerDir + cfg.dirs + 1
	c.Workload = "find /data | wc -l, in /" + scriptName
	c.Timing = "busybox time -p inside the guest (real, 10 ms resolution); each run boots a fresh guest, host caches warmed by a walk before each"
	c.Accel, c.Kernel, c.Bin = cfg.accel, cfg.kernel, cfg.bin
	c.Terminal = fmt.Sprintf("tmux %dx%d", cfg.cols, cfg.rows)
	c.SampleS = cfg.sample.Seconds()
	c.Lock = "each run under flock " + cfg.lock
	c.Order = "each repetition runs every mode once, in rotated order"
	for _, name := range allModes {
		if slices.Contains(cfg.modes, name) {
			r.Modes = append(r.Modes, &modeResult{Name: name, Label: modeInfo[name].label, Desc: modeInfo[name].desc})
		}
	}
	return r
}

func (r *results) mode(name string) *modeResult {
	for _, m := range r.Modes {
		if m.Name == name {
			return m
		}
	}
	return nil
}

func (r *results) add(name string, s *sample) { r.mode(name).Samples = append(r.mode(name).Samples, s) }

func (r *results) finish(elapsed time.Duration) {
	r.ElapsedS = elapsed.Seconds()
	r.Machine.LoadEnd = hostinfo.LoadAvg()
	base := r.mode(modeRun)
	for _, m := range r.Modes {
		secs := hostinfo.Pick(m.Samples, func(s *sample) float64 { return s.Seconds })
		m.Median, m.Min, m.Max = hostinfo.Median(secs), slices.Min(secs), slices.Max(secs)
		if m.Median > 0 {
			m.SpreadPct = 100 * (m.Max - m.Min) / m.Median
		}
		m.KrunbenchCPU = hostinfo.Median(hostinfo.Pick(m.Samples, func(s *sample) float64 { return s.KrunbenchCPU }))
		m.QEMUCPU = hostinfo.Median(hostinfo.Pick(m.Samples, func(s *sample) float64 { return s.QEMUCPU }))
		m.HostMedian = hostinfo.Median(hostinfo.Pick(m.Samples, func(s *sample) float64 { return s.HostS }))
		if base != nil && m != base && base.Median > 0 && base.HostMedian > 0 {
			m.OverheadPct = ptr(100 * (m.Median/base.Median - 1))
			m.HostOverheadPct = ptr(100 * (m.HostMedian/base.HostMedian - 1))
		}
		if m.Name == modeRun {
			continue
		}
		u := &uiTotal{KeepsRedrawing: true}
		u.MedianFPS = hostinfo.Median(hostinfo.Pick(m.Samples, func(s *sample) float64 { return s.UI.FloodFPS }))
		u.MedianAvgMs = hostinfo.Median(hostinfo.Pick(m.Samples, func(s *sample) float64 { return s.UI.FloodAvgMs }))
		for _, s := range m.Samples {
			u.MaxMs = max(u.MaxMs, s.UI.End.MaxMs)
			u.MaxP99Ms = max(u.MaxP99Ms, s.UI.FloodP99Ms)
			u.MaxBacklogMs = max(u.MaxBacklogMs, s.UI.FloodBacklogMs)
			if s.UI.MaxInFlood {
				u.MaxInFlood++
			}
			u.Dropped += s.UI.End.Dropped
			u.ConsoleDropped += s.UI.End.ConsoleDropped
			if s.UI.KeepsRedrawing {
				u.RedrawRuns++
			} else {
				u.KeepsRedrawing = false
			}
		}
		m.UI = u
	}
	r.Notes = append(r.Notes,
		"the debug overlay shows the last frame time, p50 and p99 of the last 512 frames, and the mean and max since the TUI started (View only, not the terminal write), frames and events in the last second, the backlog (how long the last batch waited in the source's buffer, and the worst in the last second), and cumulative counters; the flood's frame rate and mean come from the overlay at the workload's start and end, its max only when the max rose during the workload, its p99 and backlog as the worst the screen samples saw",
		"the source's buffer (tui.Pump) delivers at most one batch per 66 ms, so the flood's frame rate is bounded near 15/s whatever the event rate; dropped counts events lost by the tap subscription and by that buffer",
		"the guest's clock is not reliable under TCG: krunbench boots it with tsc_early_khz=2000000 while TCG's TSC ticks at the host's rate (guest time runs fast while the TSC is the clocksource), and during the find the guest's clocksource watchdog marks the TSC unstable and switches to refined-jiffies, which loses ticks when the vCPU is starved (guest time runs slow, more so when the TUI takes CPU); host_s and host_overhead_pct are the cross-check")
}

func ptr[T any](v T) *T { return &v }

// legacyFuseFile is fusebench's file from before tap_overhead_pct was
// taken within rounds (bench/internal/results' Paired): a number per row.
type legacyFuseFile struct {
	Machine   schema.Machine `json:"machine"`
	Workloads []struct {
		Name           string   `json:"name"`
		TapOverheadPct *float64 `json:"tap_overhead_pct"`
	} `json:"workloads"`
}

// readFuseFile reads fusebench's file, current or legacy, for its
// machine and its rows' tap overheads.
func readFuseFile(data []byte) (schema.Machine, map[string]float64, error) {
	overheads := map[string]float64{}
	var f schema.FuseFile
	err := json.Unmarshal(data, &f)
	if err == nil {
		for _, w := range f.Rows {
			if w.TapOverheadPct != nil {
				overheads[w.Name] = w.TapOverheadPct.Median
			}
		}
		return f.Machine, overheads, nil
	}
	var old legacyFuseFile
	if json.Unmarshal(data, &old) != nil {
		return schema.Machine{}, nil, err
	}
	for _, w := range old.Workloads {
		if w.TapOverheadPct != nil {
			overheads[w.Name] = *w.TapOverheadPct
		}
	}
	return old.Machine, overheads, nil
}

// compareFuse checks the TUI's overhead against fusebench's tap overhead.
func (r *results) compareFuse(path string) {
	c := &fuseComparison{File: path, Row: fuseRow, TargetPct: fuseTargetPct}
	r.Fuse = c
	if m := r.mode(modeTUI); m != nil {
		c.TUIOverheadPct, c.TUIHostOverheadPct = m.OverheadPct, m.HostOverheadPct
	}
	data, err := os.ReadFile(path)
	if err != nil {
		c.Note = fmt.Sprintf("no fusebench results (%v): run fusebench first; nothing to compare with", err)
		return
	}
	machine, overheads, err := readFuseFile(data)
	if err != nil {
		c.Note = fmt.Sprintf("fusebench results unreadable: %v", err)
		return
	}
	c.Present, c.Date, c.Commit = true, machine.Date, machine.Krunbench
	c.TapOverheadPct = overheads
	bound, ok := c.TapOverheadPct[fuseRow]
	if !ok {
		c.Note = fmt.Sprintf("fusebench results have no tap overhead for %q", fuseRow)
		return
	}
	c.BoundPct = ptr(bound)
	c.Note = fmt.Sprintf("bound: fusebench's %q row (find+stat over the same tree), tap (c) over no-tap (b); a negative bound is fusebench's noise, so pass_vs_fusebench_target (%.0f%%) is given too", fuseRow, fuseTargetPct)
	if c.TUIOverheadPct == nil {
		c.Note += "; no tui mode run, nothing compared"
		return
	}
	c.Pass = ptr(*c.TUIOverheadPct <= bound)
	c.PassTarget = ptr(*c.TUIOverheadPct <= fuseTargetPct)
	if c.TUIHostOverheadPct != nil {
		c.PassHostClock = ptr(*c.TUIHostOverheadPct <= bound)
	}
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "\ntuibench: %s over %d entries, guest time (busybox time -p), median of %d runs, accel %s, %s\n\n",
		"find /data | wc -l", r.Config.Entries, r.cfg.runs, r.cfg.accel, r.Config.Terminal)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tmedian\tmin\tmax\tspread\tvs run\thost\tvs run\tkrunbench CPU\tqemu CPU\tframes/s\tframe avg\tframe p99\tframe max\tbacklog\tdropped\tredraws\t")
	for _, m := range r.Modes {
		line := []string{m.Label, fmtS(m.Median), fmtS(m.Min), fmtS(m.Max), fmt.Sprintf("%.0f%%", m.SpreadPct), fmtPct(m.OverheadPct),
			fmt.Sprintf("%.1fs", m.HostMedian), fmtPct(m.HostOverheadPct), fmtS(m.KrunbenchCPU), fmtS(m.QEMUCPU)}
		if u := m.UI; u != nil {
			redraw := fmt.Sprintf("%d/%d runs", u.RedrawRuns, len(m.Samples))
			line = append(line, fmt.Sprintf("%.0f", u.MedianFPS), fmt.Sprintf("%.2fms", u.MedianAvgMs), fmt.Sprintf("%.2fms", u.MaxP99Ms),
				fmt.Sprintf("%.1fms", u.MaxMs), fmt.Sprintf("%.0fms", u.MaxBacklogMs), fmt.Sprint(u.Dropped), redraw)
		} else {
			line = append(line, "-", "-", "-", "-", "-", "-", "-")
		}
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w, "\nmedian/min/max: guest seconds; vs run: extra guest time over run (a); host: the workload on the host's clock (median, to 0.1s), and its extra over (a);")
	fmt.Fprintln(w, "CPU: host CPU seconds during the workload (medians);")
	fmt.Fprintln(w, "frames/s, frame avg: the debug overlay over the workload (medians); frame p99, backlog: the worst screen sample (worst run); frame max: the overlay's max since launch (worst run);")
	fmt.Fprintln(w, "dropped: events the TUI dropped (all runs); redraws: runs in which the traffic pane's counter rose between every two screen samples")
	c := r.Fuse
	switch {
	case !c.Present || c.BoundPct == nil:
		fmt.Fprintf(w, "\nfusebench comparison: %s\n", c.Note)
	case c.TUIOverheadPct == nil:
		fmt.Fprintf(w, "\nfusebench tap overhead (%s row): %s; no tui mode run\n", c.Row, fmtPct(c.BoundPct))
	default:
		fmt.Fprintf(w, "\ntarget: tui (b) overhead %s <= fusebench tap overhead %s (%s row, %s): %s; vs fusebench's %.0f%% target: %s\n",
			fmtPct(c.TUIOverheadPct), fmtPct(c.BoundPct), c.Row, filepath.Base(c.File), passFail(*c.Pass), c.TargetPct, passFail(*c.PassTarget))
		if c.PassHostClock != nil {
			fmt.Fprintf(w, "on the host's clock: tui (b) overhead %s: %s (the guest's clock drifts under TCG; see notes in the JSON)\n",
				fmtPct(c.TUIHostOverheadPct), passFail(*c.PassHostClock))
		}
	}
}

func fmtS(v float64) string { return fmt.Sprintf("%.2fs", v) }

func fmtPct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", *p)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// collectInfo describes the machine and the build under test.
func collectInfo(cfg *config) machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	m.Kernel = hostinfo.Kernel()
	m.CPU = hostinfo.ProcField("/proc/cpuinfo", "model name")
	m.MemTotal = hostinfo.ProcField("/proc/meminfo", "MemTotal")
	m.LoadStart = hostinfo.LoadAvg()
	if out, err := exec.Command("qemu-system-x86_64", "--version").Output(); err == nil {
		m.QEMU, _, _ = strings.Cut(string(out), "\n")
	}
	if out, err := exec.Command("tmux", "-V").Output(); err == nil {
		m.Tmux = strings.TrimSpace(string(out))
	}
	m.Krunbench = hostinfo.Commit(filepath.Dir(filepath.Dir(cfg.bin)))
	return m
}
