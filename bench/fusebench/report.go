package main

import (
	"bufio"
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
	"golang.org/x/sys/unix"
)

// Targets, reported rather than asserted.
const (
	targetRatio       = 1.0
	targetOverheadPct = 5.0
)

// measure is one sample.
type measure struct {
	Value     float64 `json:"value"`
	Seconds   float64 `json:"seconds"`
	ServerCPU float64 `json:"server_cpu_s"`
	ClientCPU float64 `json:"client_cpu_s"`
}

// series is every sample of one workload in one mode.
type series struct {
	Samples         []measure `json:"samples"`
	Median          float64   `json:"median"`
	MedianSeconds   float64   `json:"median_seconds"`
	MedianServerCPU float64   `json:"median_server_cpu_s"`
	Min             float64   `json:"min"`
	Max             float64   `json:"max"`
	// SpreadPct is (max - min) / median: how far apart the samples are.
	SpreadPct float64 `json:"spread_pct"`
}

type row struct {
	*workload
	Modes map[string]*series `json:"modes"`
	// OursOverGoFuse is tap (c) throughput over go-fuse's: > 1 means
	// krunbench is faster.
	OursOverGoFuse *float64 `json:"ours_over_gofuse,omitempty"`
	// TapOverheadPct and TraceOverheadPct are the extra time (c) and (d)
	// take over (b): 100 * (time/time_b - 1).
	TapOverheadPct   *float64 `json:"tap_overhead_pct,omitempty"`
	TraceOverheadPct *float64 `json:"trace_overhead_pct,omitempty"`
}

type target struct {
	Description string          `json:"description"`
	Pass        *bool           `json:"pass"`
	Rows        map[string]bool `json:"rows"`
}

type traceRun struct {
	Bytes   int64  `json:"bytes"`
	Events  int64  `json:"events"`
	Dropped uint64 `json:"dropped"`
}

type machine struct {
	Kernel    string `json:"kernel"`
	CPU       string `json:"cpu_model"`
	NProc     int    `json:"nproc"`
	MemTotal  string `json:"mem_total"`
	Go        string `json:"go_version"`
	Date      string `json:"date"`
	Workdir   string `json:"workdir"`
	WorkdirFS string `json:"workdir_fs"`
	Krunbench string `json:"krunbench_commit"`
	GoFuse    string `json:"go_fuse_version"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
	// BusyStart is the share of CPU time other work used in the second
	// before the benchmark started.
	BusyStart float64 `json:"cpu_busy_pct_start"`
}

type results struct {
	cfg     *config
	Machine machine `json:"machine"`
	Config  struct {
		Runs        int      `json:"runs"`
		SizeBytes   int64    `json:"size_bytes"`
		Dirs        int      `json:"dirs"`
		FilesPerDir int      `json:"files_per_dir"`
		Creates     int      `json:"creates"`
		Bin         string   `json:"krunbench_bin"`
		Order       string   `json:"order"`
		CacheDrop   string   `json:"cache_drop"`
		Caching     []string `json:"caching"`
	} `json:"config"`
	Modes   []*mode               `json:"modes"`
	Rows    []*row                `json:"workloads"`
	Traces  map[string][]traceRun `json:"trace_files,omitempty"`
	Targets map[string]*target    `json:"targets"`
	Paired  []*pairedRow          `json:"paired_overhead,omitempty"`
	Elapsed float64               `json:"elapsed_s"`
}

func newResults(cfg *config, info machine, modes map[string]*mode, wls []*workload) *results {
	r := &results{cfg: cfg, Machine: info, Traces: map[string][]traceRun{}}
	r.Config.Runs, r.Config.SizeBytes = cfg.runs, cfg.size
	r.Config.Dirs, r.Config.FilesPerDir, r.Config.Creates = cfg.dirs, cfg.filesPerDir, cfg.creates
	r.Config.Bin = cfg.bin
	r.Config.Order = "each repetition mounts every mode once, in rotated order, and takes one sample of every workload"
	r.Config.CacheDrop = "sync; echo 3 > /proc/sys/vm/drop_caches before every sample, then wait for the server's CPU time to stop moving"
	r.Config.Caching = []string{
		"krunbench: entry and attr timeouts 1s (passthrough.DefaultTimeout, used because serve passes zero Options), max_write and max_pages 1 MiB, max_background 256, congestion_threshold 192, allow_other, no default_permissions, no writeback cache, READDIRPLUS_AUTO",
		"go-fuse loopback: EntryTimeout and AttrTimeout 1s, MaxWrite 1 MiB (max_pages follows), MaxBackground 256, CongestionThreshold 192, AllowOther, no default_permissions, no writeback cache, DirectMountStrict; splice for READ (go-fuse default), always READDIRPLUS; FUSE passthrough (CAP_PASSTHROUGH, which go-fuse enables by default for root on kernel 6.9+) disabled in go-fuse (e) and enabled only in the informational go-fuse-pt mode",
	}
	for _, name := range cfg.modes {
		r.Modes = append(r.Modes, modes[name])
	}
	for _, w := range wls {
		r.Rows = append(r.Rows, &row{workload: w, Modes: map[string]*series{}})
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

func pick(ms []measure, f func(measure) float64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// finish computes medians, ratios and targets.
func (r *results) finish(elapsed time.Duration) {
	r.Elapsed = elapsed.Seconds()
	r.Machine.LoadEnd = hostinfo.LoadAvg()
	ratio := &target{Description: fmt.Sprintf("ours >= go-fuse on every row: tap (c) median throughput / go-fuse median throughput >= %.2f", targetRatio), Rows: map[string]bool{}}
	overhead := &target{Description: fmt.Sprintf("tap overhead <= %.0f%%: extra time of tap (c) and trace (d) over no-tap (b), from medians", targetOverheadPct), Rows: map[string]bool{}}
	for _, x := range r.Rows {
		for _, s := range x.Modes {
			vals := pick(s.Samples, func(m measure) float64 { return m.Value })
			if len(vals) == 0 {
				continue
			}
			s.Median = hostinfo.Median(vals)
			s.Min, s.Max = slices.Min(vals), slices.Max(vals)
			if s.Median > 0 {
				s.SpreadPct = 100 * (s.Max - s.Min) / s.Median
			}
			s.MedianSeconds = hostinfo.Median(pick(s.Samples, func(m measure) float64 { return m.Seconds }))
			s.MedianServerCPU = hostinfo.Median(pick(s.Samples, func(m measure) float64 { return m.ServerCPU }))
		}
		b, c, d, e := x.Modes[modeNoTap], x.Modes[modeTap], x.Modes[modeTrace], x.Modes[modeGoFuse]
		if c != nil && e != nil && e.Median > 0 {
			x.OursOverGoFuse = ptr(c.Median / e.Median)
			ratio.Rows[x.Name] = *x.OursOverGoFuse >= targetRatio
		}
		if b != nil && b.Median > 0 {
			if c != nil && c.Median > 0 {
				x.TapOverheadPct = ptr(100 * (b.Median/c.Median - 1))
				overhead.Rows[x.Name+" tap"] = *x.TapOverheadPct <= targetOverheadPct
			}
			if d != nil && d.Median > 0 {
				x.TraceOverheadPct = ptr(100 * (b.Median/d.Median - 1))
				overhead.Rows[x.Name+" trace"] = *x.TraceOverheadPct <= targetOverheadPct
			}
		}
	}
	r.Targets = map[string]*target{"ours_ge_gofuse": ratio, "tap_overhead_le_5pct": overhead}
	if len(r.Paired) > 0 {
		r.Targets["tap_overhead_paired_le_5pct"] = pairedTarget(r.Paired)
	}
	for _, t := range r.Targets {
		if len(t.Rows) == 0 {
			continue
		}
		pass := true
		for _, ok := range t.Rows {
			pass = pass && ok
		}
		t.Pass = &pass
	}
}

func (r *results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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

func fmtPct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", *p)
}

func fmtRatio(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *p)
}

// printTable prints medians (rows: workloads, columns: modes) and the
// derived columns, then the server CPU time behind them.
func (r *results) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "unit"}
	for _, m := range r.Modes {
		head = append(head, m.Label)
	}
	head = append(head, "ours/go-fuse", "tap ovh (c)", "trace ovh (d)", "spread", "")
	fmt.Fprintf(w, "\nmedian of %d runs; ours = tap (c); overhead = extra time over no-tap (b); spread = largest (max-min)/median of the FUSE modes\n", r.cfg.runs)
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
		line = append(line, fmtRatio(x.OursOverGoFuse), fmtPct(x.TapOverheadPct), fmtPct(x.TraceOverheadPct), fmt.Sprintf("%.0f%%", spread), "")
		fmt.Fprintln(tw, strings.Join(line, "\t"))
		if strings.HasPrefix(x.Name, "stat") {
			line = []string{x.Title, "s"}
			for _, m := range r.Modes {
				line = append(line, cell(x, m, func(s *series) float64 { return s.MedianSeconds }, "s"))
			}
			line = append(line, "", "", "", "", "")
			fmt.Fprintln(tw, strings.Join(line, "\t"))
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nserver CPU seconds per run (median; user+system of the server process)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head = []string{"workload"}
	for _, m := range r.Modes {
		if m.fuse {
			head = append(head, m.Label)
		}
	}
	fmt.Fprintln(tw, strings.Join(append(head, ""), "\t"))
	for _, x := range r.Rows {
		line := []string{x.Title}
		for _, m := range r.Modes {
			if m.fuse {
				line = append(line, cell(x, m, func(s *series) float64 { return s.MedianServerCPU }, "s"))
			}
		}
		fmt.Fprintln(tw, strings.Join(append(line, ""), "\t"))
	}
	tw.Flush()

	fmt.Fprintln(w)
	for _, key := range []string{"ours_ge_gofuse", "tap_overhead_le_5pct", "tap_overhead_paired_le_5pct"} {
		t := r.Targets[key]
		if t == nil {
			continue
		}
		verdict := "n/a"
		if t.Pass != nil {
			verdict = map[bool]string{true: "PASS", false: "FAIL"}[*t.Pass]
		}
		var misses []string
		for name, ok := range t.Rows {
			if !ok {
				misses = append(misses, name)
			}
		}
		slices.Sort(misses)
		fmt.Fprintf(w, "target %-28s %s", t.Description[:strings.Index(t.Description, ":")], verdict)
		if len(misses) > 0 {
			fmt.Fprintf(w, " (missed: %s)", strings.Join(misses, ", "))
		}
		fmt.Fprintln(w)
	}
	for mode, runs := range r.Traces {
		for i, t := range runs {
			fmt.Fprintf(w, "%s run %d: trace file %d bytes, %d events, %d dropped\n", mode, i+1, t.Bytes, t.Events, t.Dropped)
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
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	m.CPU = hostinfo.ProcField("/proc/cpuinfo", "model name")
	m.LoadStart = hostinfo.LoadAvg()
	m.BusyStart = hostinfo.CPUBusy(time.Second)
	m.MemTotal = hostinfo.ProcField("/proc/meminfo", "MemTotal")
	var sfs unix.Statfs_t
	if unix.Statfs(workdir, &sfs) == nil {
		m.WorkdirFS = fsName(sfs.Type)
	}
	repo := filepath.Dir(filepath.Dir(cfg.bin))
	if out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Krunbench = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Krunbench += "-dirty"
		}
	}
	return m
}

func goFuseVersion(goCmd string) string {
	out, err := exec.Command(goCmd, "list", "-m", "-f", "{{.Version}}", "github.com/hanwen/go-fuse/v2").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func fsName(magic int64) string {
	switch magic {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	}
	return fmt.Sprintf("0x%x", magic)
}
