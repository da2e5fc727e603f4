package main

import (
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/krunbench/krunbench/bench/internal/cli"
	"github.com/krunbench/krunbench/bench/internal/hostinfo"
	schema "github.com/krunbench/krunbench/bench/internal/results"
	"github.com/krunbench/krunbench/session/qemu"
)

// Targets from issue 15, reported rather than asserted: krunbench's
// backend CPU per 1,000 requests at most 0.8x virtiofsd's on every
// workload, its wall time no worse, and its RSS after the memory walk no
// more than virtiofsd's.
const (
	targetCPU  = 0.8
	targetWall = 1.0
	targetRSS  = 1.0
)

// The file's types are bench/internal/results', which summary reads
// with: guestbench's own mode (what it runs) is the one thing declared
// here (TestWrittenFileReadsBack keeps it in step with results.GuestMode).
type (
	measure = schema.GuestMeasure
	series  = schema.GuestSeries
	row     = schema.GuestRow
	machine = schema.GuestMachine
	target  = schema.Target
)

// results is the run as guestbench writes it (bench/results/guest.json).
type results struct {
	cfg *config
	schema.Guest[*mode]
}

func unitOf(w string) string {
	return map[string]string{"stat": "files/s", "read": "MB/s", "create": "ops/s", "memory": "files/s", "memory-large": "files/s"}[w]
}

// unitScale turns the runner's units (files, bytes, ops) into the row's.
func unitScale(w string) float64 {
	if w == "read" {
		return 1e6
	}
	return 1
}

func newResults(cfg *config, info machine, modes map[string]*mode) *results {
	r := &results{cfg: cfg, Guest: schema.Guest[*mode]{Label: cfg.label, Machine: info, Boots: map[string][]float64{}}}
	c := &r.Config
	c.Runs, c.SizeBytes, c.Dirs, c.FilesPerDir, c.Creates = cfg.runs, cfg.size, cfg.dirs, cfg.filesPerDir, cfg.creates
	c.Bin, c.GuestKernel, c.Accel, c.CPUs, c.MemMiB, c.QueueSize = cfg.bin, cfg.kernel, cfg.accel, cfg.cpus, cfg.memMiB, cfg.queueSize
	c.Guest = "qemu -M microvm, memory-backend-memfd share=on, virtio-mmio (modern), console on virtconsole; root is an initramfs whose /init is guestbench/runner; the filesystem under test at /mnt; the same for every mode"
	c.Order = "each repetition (round) boots every mode once, in rotated order; a boot takes one sample of every workload, in -workloads order"
	if cfg.largeRuns > 0 && cfg.largeRuns < cfg.runs && slices.Contains(cfg.workloads, "memory-large") {
		c.Order += fmt.Sprintf(", but memory-large only in the first %d rounds (-large-runs; its row is RSS only)", cfg.largeRuns)
	}
	c.LargeRuns = cfg.largeRuns
	c.Ratios = "ratios to virtiofsd, per krunbench mode and workload: CPU per 1,000 requests and wall seconds are taken within each round (that round's krunbench boot against the virtiofsd boot of the same round; CPU scaled by the two modes' request counts from the counting boots), and the judged ratio is the median over the rounds, with min and max (a round where either side failed gives none); the whole-workload CPU ratio likewise; the ratio of the two modes' medians is kept beside them (cpu_ratio_of_medians, wall_ratio_of_medians); RSS ratios are ratios of medians"
	c.CacheDrop = "in the guest, sync; echo 3 > /proc/sys/vm/drop_caches before every sample"
	c.HostCache = "warm: the host reads the file and walks the tree before every boot, so no mode reads the host disk"
	c.Caching = []string{
		"no DAX (QEMU 7.2's vhost-user-fs-device has no cache window); the guest page cache on; 1 s entry and attribute timeouts on both backends (krunbench: passthrough.DefaultTimeout; virtiofsd: cache=auto); no writeback cache on either",
		"directory listings: the judged krunbench modes run with --readdirplus auto, READDIRPLUS and READDIRPLUS_AUTO offered as virtiofsd (libfuse) offers them, so the guest sends both backends the same requests (requests_by_opcode shows it); " + modeAlways + " is krunbench's default (--readdirplus always: READDIRPLUS for every chunk, no LOOKUP per file), shown but not judged",
	}
	c.Device = "vhost-user-fs-device,queue-size=" + fmt.Sprint(cfg.queueSize)
	if cfg.dmaBounce {
		c.Device += ",iommu_platform=on; guest " + strings.Join(qemu.TCGDMAParams(cfg.memMiB), " ") + " (the QEMU engine's TCG setup, issue 16: every buffer bounced through the swiotlb); VIRTIO_F_ACCESS_PLATFORM checked negotiated in every boot"
	}
	c.DMABounce = cfg.dmaBounce
	c.Counting = "one extra boot per mode, untimed, with the backend's own request record on (krunbench --trace, virtiofsd -d); the runner looks up a missing name before and after each workload and the requests between the two markers are counted; CPU per 1,000 requests = median CPU of the timed boots / that count (the ratios to virtiofsd are taken round by round: see ratios)"
	c.MemoryFiles, c.LargeFiles = cfg.memoryFiles, cfg.largeFiles
	c.IdleSampleS = cfg.idleSample.Seconds()
	for _, name := range cfg.modes {
		r.Modes = append(r.Modes, modes[name])
	}
	nfiles := cfg.dirs * cfg.filesPerDir
	desc := map[string]*row{
		"stat": {Title: fmt.Sprintf("find+stat %d files", nfiles),
			Desc: "walk the tree (open+getdents of each directory, like find) and lstat(2) every entry; files/s counts regular files"},
		"read": {Title: fmt.Sprintf("seq read %s", cli.Human(cfg.size)),
			Desc: "read a file made on the host in 1 MiB read(2)s (MB = 10^6 bytes)"},
		"create": {Title: fmt.Sprintf("create+unlink %d files", cfg.creates),
			Desc: "in a fresh empty directory, per file: open(O_CREAT|O_EXCL|O_WRONLY), close, unlink; one op is that triple"},
		"memory": {Title: fmt.Sprintf("memory: find+stat %d files", cfg.memoryFiles),
			Desc: "the stat walk over a tree of -memory-files files (1000 per directory, fewer than virtiofsd's RLIMIT_NOFILE: it keeps an fd per inode); the backend's RSS right after it is the memory row"},
		"memory-large": {Title: fmt.Sprintf("memory: find+stat %d files", cfg.largeFiles),
			Desc: "the memory walk over a tree of -memory-large-files files, going on past failed lookups; virtiofsd keeps an fd per inode and fails with EMFILE past its RLIMIT_NOFILE (its mode's description says which limit applied): then the row records its failed lookups, the first error, its descriptors and whether it still serves a file the walk did not touch, and takes no RSS ratio against it; the backend's RSS right after the walk"},
	}
	for _, w := range cfg.workloads {
		x := desc[w]
		x.Name, x.Unit, x.Modes = w, unitOf(w), map[string]*series{}
		r.Rows = append(r.Rows, x)
	}
	return r
}

// add records the sample of workload wl that mode's boot of round rep
// (0-based) took.
func (r *results) add(wl, mode string, rep int, m measure) {
	m.Round = rep + 1
	m.Value = m.Units / m.Seconds / unitScale(wl)
	for _, x := range r.Rows {
		if x.Name == wl {
			if x.Modes[mode] == nil {
				x.Modes[mode] = &series{}
			}
			x.Modes[mode].Samples = append(x.Modes[mode].Samples, m)
		}
	}
}

func (r *results) fail(wl, mode, msg string) {
	for _, x := range r.Rows {
		if x.Name == wl {
			if x.Modes[mode] == nil {
				x.Modes[mode] = &series{}
			}
			x.Modes[mode].Failures = append(x.Modes[mode].Failures, msg)
		}
	}
}

func (r *results) setRequests(wl, mode string, n opCounts) {
	for _, x := range r.Rows {
		if x.Name == wl {
			if x.Modes[mode] == nil {
				x.Modes[mode] = &series{}
			}
			x.Modes[mode].Requests, x.Modes[mode].RequestsByOp = n.total(), n
		}
	}
}

func (r *results) addBoot(mode string, secs float64) {
	r.Boots[mode] = append(r.Boots[mode], secs)
}

// walkFailed says whether a mode's memory walk failed lookups in some
// sample (virtiofsd past its RLIMIT_NOFILE): its RSS, CPU and time are
// for fewer inodes, so no ratio is taken against it.
func walkFailed(s *series) bool {
	return slices.ContainsFunc(s.Samples, func(m measure) bool { return m.FilesFailed > 0 })
}

func (r *results) finish(elapsed time.Duration) {
	r.Elapsed = elapsed.Seconds()
	r.Machine.LoadEnd = hostinfo.LoadAvg()
	cpu := &target{Description: fmt.Sprintf("backend CPU per 1,000 requests <= %.1fx virtiofsd's: median over rounds of the round's ratio, every workload, each krunbench mode", targetCPU), Rows: map[string]bool{}}
	wall := &target{Description: "wall time no worse than virtiofsd's: median over rounds of the round's ratio of seconds, every workload, each krunbench mode", Rows: map[string]bool{}}
	rss := &target{Description: "backend RSS after the memory walk <= virtiofsd's: median VmRSS", Rows: map[string]bool{}}
	for _, x := range r.Rows {
		for _, s := range x.Modes {
			if len(s.Samples) == 0 {
				continue
			}
			vals := hostinfo.Pick(s.Samples, func(m measure) float64 { return m.Value })
			s.Median = hostinfo.Median(vals)
			if s.Median > 0 {
				s.SpreadPct = 100 * (slices.Max(vals) - slices.Min(vals)) / s.Median
			}
			s.MedianSeconds = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return m.Seconds }))
			s.MedianServerCPU = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return m.ServerCPU }))
			s.MedianQemuCPU = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return m.QemuCPU }))
			s.MedianRSSKiB = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return float64(m.ServerRSSKiB) }))
			s.MedianAnonKiB = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return float64(m.ServerAnonKiB) }))
			s.MedianFileKiB = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return float64(m.ServerFileKiB) }))
			s.MedianShmemKiB = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return float64(m.ServerShmemKiB) }))
			if !slices.ContainsFunc(s.Samples, func(m measure) bool { return m.IdleRSSKiB == 0 }) {
				s.MedianIdleRSSKiB = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return float64(m.IdleRSSKiB) }))
				s.MedianIdleAnonKiB = hostinfo.Median(hostinfo.Pick(s.Samples, func(m measure) float64 { return float64(m.IdleAnonKiB) }))
			}
			if s.Requests > 0 {
				s.CPUPer1k = s.MedianServerCPU / float64(s.Requests) * 1000
			}
		}
		peer := x.Modes[modeVirtiofsd]
		if peer == nil || len(peer.Samples) == 0 || walkFailed(peer) {
			continue
		}
		x.CPURatio, x.WallRatio, x.RSSRatio = map[string]float64{}, map[string]float64{}, map[string]float64{}
		x.TotalCPURatio = map[string]float64{}
		x.CPURatioRounds, x.WallRatioRounds = map[string]*schema.RoundRatios{}, map[string]*schema.RoundRatios{}
		x.CPURatioOfMedians, x.WallRatioOfMedians = map[string]float64{}, map[string]float64{}
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			if s == nil || len(s.Samples) == 0 || !m.krunbench {
				continue
			}
			judged := m.Name == modeTap || m.Name == modeNoTap
			key := m.Name + " " + x.Name
			if total := roundRatios(s.Samples, peer.Samples, serverCPU, 1); total != nil {
				x.TotalCPURatio[m.Name] = total.Median
			}
			if s.CPUPer1k > 0 && peer.CPUPer1k > 0 {
				x.CPURatioOfMedians[m.Name] = s.CPUPer1k / peer.CPUPer1k
				// Per 1k requests: the counts are the counting boots',
				// one per mode, so each round's CPU ratio is scaled by
				// virtiofsd's count over this mode's.
				if p := roundRatios(s.Samples, peer.Samples, serverCPU, float64(peer.Requests)/float64(s.Requests)); p != nil {
					x.CPURatioRounds[m.Name], x.CPURatio[m.Name] = p, p.Median
					if judged && !isMemory(x.Name) {
						cpu.Rows[key] = p.Median <= targetCPU
					}
				}
			}
			if peer.MedianSeconds > 0 {
				x.WallRatioOfMedians[m.Name] = s.MedianSeconds / peer.MedianSeconds
			}
			if p := roundRatios(s.Samples, peer.Samples, seconds, 1); p != nil {
				x.WallRatioRounds[m.Name], x.WallRatio[m.Name] = p, p.Median
				if judged && !isMemory(x.Name) {
					wall.Rows[key] = p.Median <= targetWall
				}
			}
			if peer.MedianIdleRSSKiB > 0 && s.MedianIdleRSSKiB > 0 {
				if x.IdleRSSRatio == nil {
					x.IdleRSSRatio = map[string]float64{}
				}
				x.IdleRSSRatio[m.Name] = s.MedianIdleRSSKiB / peer.MedianIdleRSSKiB
			}
			if peer.MedianRSSKiB > 0 {
				x.RSSRatio[m.Name] = s.MedianRSSKiB / peer.MedianRSSKiB
				if judged && x.Name == "memory" {
					rss.Rows[key] = x.RSSRatio[m.Name] <= targetRSS
				}
			}
		}
	}
	r.Targets = map[string]*target{"cpu_per_1k_le_0.8x_virtiofsd": cpu, "wall_le_virtiofsd": wall, "rss_le_virtiofsd": rss}
	for _, t := range r.Targets {
		t.Settle()
	}
}

// isMemory says whether a workload is judged on RSS only.
func isMemory(w string) bool { return w == "memory" || w == "memory-large" }

func fmtValue(unit string, v float64) string {
	switch {
	case unit == "s":
		return fmt.Sprintf("%.2f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// printTable prints medians (rows: workloads, columns: modes), then the
// backend's CPU per 1,000 requests and RSS, the ratios to virtiofsd, and
// the targets.
func (r *results) printTable(w io.Writer) {
	c := r.cfg
	bounce := "no DMA bounce"
	if c.dmaBounce {
		bounce = "iommu_platform=on + swiotlb=force"
	}
	large := ""
	if c.largeRuns > 0 && c.largeRuns < c.runs && slices.Contains(c.workloads, "memory-large") {
		large = fmt.Sprintf(" (memory-large: the first %d)", c.largeRuns)
	}
	fmt.Fprintf(w, "\nguest benchmark: median of %d boots per mode%s; %s, %d vCPU, %d MiB; vhost-user-fs-device %s for every backend\n",
		c.runs, large, c.accel, c.cpus, c.memMiB, bounce)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "unit"}
	for _, m := range r.Modes {
		head = append(head, m.Label, m.Label+" s")
	}
	fmt.Fprintln(tw, strings.Join(append(head, "spread", ""), "\t"))
	for _, x := range r.Rows {
		line := []string{x.Title, x.Unit}
		spread := 0.0
		for _, m := range r.Modes {
			if s := x.Modes[m.Name]; s != nil && len(s.Samples) > 0 {
				line = append(line, fmtValue(x.Unit, s.Median), fmtValue("s", s.MedianSeconds))
				spread = max(spread, s.SpreadPct)
			} else if s != nil && len(s.Failures) > 0 {
				line = append(line, "FAILED", "-")
			} else {
				line = append(line, "-", "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(append(line, fmt.Sprintf("%.0f%%", spread), ""), "\t"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nbackend: CPU s in the timed part (median) / requests (counting boot) = CPU ms per 1,000 requests; RSS MiB after the workload\n")
	fmt.Fprintf(w, "ratios to virtiofsd: cpu/1k, cpu (whole workload) and wall are medians over rounds of each round's ratio [min-max over rounds] (judged);\n")
	fmt.Fprintf(w, "\"of medians\": the ratio of the two modes' medians, for comparison; rss: ratio of medians\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head = []string{"workload"}
	for _, m := range r.Modes {
		head = append(head, m.Label+" cpu", "reqs", "ms/1k", "rss")
	}
	for _, m := range r.Modes {
		if m.krunbench {
			head = append(head, m.Label+" cpu/1k ratio", "of medians", "cpu ratio", "wall ratio", "of medians", "rss ratio")
		}
	}
	fmt.Fprintln(tw, strings.Join(append(head, ""), "\t"))
	ratio := func(v map[string]float64, name string) string {
		if f, ok := v[name]; ok {
			return fmt.Sprintf("%.2fx", f)
		}
		return "-"
	}
	for _, x := range r.Rows {
		line := []string{x.Title}
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			if s == nil || len(s.Samples) == 0 {
				line = append(line, "-", "-", "-", "-")
				continue
			}
			reqs, per := "-", "-"
			if s.Requests > 0 {
				reqs, per = fmt.Sprint(s.Requests), fmt.Sprintf("%.1f", 1000*s.CPUPer1k)
			}
			line = append(line, fmt.Sprintf("%.2f", s.MedianServerCPU), reqs, per, fmt.Sprintf("%.1f", s.MedianRSSKiB/1024))
		}
		for _, m := range r.Modes {
			if m.krunbench {
				line = append(line, fmtRoundRatios(x.CPURatioRounds[m.Name]), ratio(x.CPURatioOfMedians, m.Name), ratio(x.TotalCPURatio, m.Name),
					fmtRoundRatios(x.WallRatioRounds[m.Name]), ratio(x.WallRatioOfMedians, m.Name), ratio(x.RSSRatio, m.Name))
			}
		}
		fmt.Fprintln(tw, strings.Join(append(line, ""), "\t"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nrequests by opcode (counting boot) and backend RSS after the workload, MiB: total = anon (the backend's own) + file + shmem (guest RAM it touched)\n")
	for _, x := range r.Rows {
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			if s == nil || len(s.Samples) == 0 {
				continue
			}
			fmt.Fprintf(w, "  %-14s %-18s rss %6.1f = %6.1f + %5.1f + %6.1f  %s\n", x.Name, m.Label,
				s.MedianRSSKiB/1024, s.MedianAnonKiB/1024, s.MedianFileKiB/1024, s.MedianShmemKiB/1024, formatOps(s.RequestsByOp))
		}
	}
	for _, x := range r.Rows {
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			if s == nil || s.MedianIdleRSSKiB == 0 {
				continue
			}
			idleRatio := ""
			if f, ok := x.IdleRSSRatio[m.Name]; ok {
				idleRatio = fmt.Sprintf("  (%.2fx virtiofsd's; right after the walk %s)", f, ratio(x.RSSRatio, m.Name))
			}
			fmt.Fprintf(w, "  %-14s %-18s rss after %.0f s idle %6.1f, anon %6.1f MiB%s\n", x.Name, m.Label,
				r.Config.IdleSampleS, s.MedianIdleRSSKiB/1024, s.MedianIdleAnonKiB/1024, idleRatio)
		}
	}

	fmt.Fprintln(w)
	for _, key := range []string{"cpu_per_1k_le_0.8x_virtiofsd", "wall_le_virtiofsd", "rss_le_virtiofsd"} {
		t := r.Targets[key]
		verdict, misses := t.Verdict("MISS"), t.Missed()
		fmt.Fprintf(w, "target %-58s %s", t.Description[:strings.Index(t.Description, ":")], verdict)
		if len(misses) > 0 {
			fmt.Fprintf(w, " (missed: %s)", strings.Join(misses, ", "))
		}
		fmt.Fprintln(w)
	}
	for _, x := range r.Rows {
		for _, m := range r.Modes {
			if s := x.Modes[m.Name]; s != nil && len(s.Failures) > 0 {
				fmt.Fprintf(w, "FAILED %s %s in %d boot(s): %s\n", m.Name, x.Name, len(s.Failures), s.Failures[0])
			}
		}
	}
}

// fmtRoundRatios is a ratio taken within rounds: "1.13x [1.05-1.60]"
// (median [min-max] over rounds).
func fmtRoundRatios(p *schema.RoundRatios) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx [%.2f-%.2f]", p.Median, p.Min, p.Max)
}

// formatOps lists opcode counts, the most frequent first.
func formatOps(c map[string]int) string {
	ops := slices.Collect(maps.Keys(c))
	slices.SortFunc(ops, func(a, b string) int {
		if c[a] != c[b] {
			return c[b] - c[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %d", op, c[op])
	}
	return strings.Join(parts, ", ")
}

// collectInfo describes the machine and the build under test.
func collectInfo(cfg *config, workdir string) machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	m.Kernel = hostinfo.Kernel()
	m.CPU = hostinfo.ProcField("/proc/cpuinfo", "model name")
	m.MemTotal = hostinfo.ProcField("/proc/meminfo", "MemTotal")
	m.LoadStart = hostinfo.LoadAvg()
	m.BusyStart = hostinfo.CPUBusy(time.Second)
	if out, err := exec.Command(cfg.qemu, "--version").Output(); err == nil {
		m.QEMU, _, _ = strings.Cut(string(out), "\n")
	}
	m.WorkdirFS = hostinfo.FSType(workdir)
	m.Krunbench = hostinfo.Commit(filepath.Dir(filepath.Dir(cfg.bin)))
	return m
}
