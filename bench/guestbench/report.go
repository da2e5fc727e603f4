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
	"golang.org/x/sys/unix"
)

// Targets from the issue, reported rather than asserted: virtio-fs over 9p
// throughput on the metadata walk, and on the sequential read.
const (
	targetStat = 2.0
	targetRead = 1.0
)

// measure is one sample of one workload in one boot.
type measure struct {
	Value   float64 `json:"value"`
	Seconds float64 `json:"seconds"`
	Units   float64 `json:"units"`
	// ServerCPU and QemuCPU are the host CPU time krunbench serve (0 for
	// 9p) and QEMU (vCPUs, device emulation, 9p server) used during the
	// timed part.
	ServerCPU float64 `json:"server_cpu_s"`
	QemuCPU   float64 `json:"qemu_cpu_s"`
}

type series struct {
	Samples         []measure `json:"samples"`
	Median          float64   `json:"median"`
	MedianSeconds   float64   `json:"median_seconds"`
	MedianServerCPU float64   `json:"median_server_cpu_s"`
	MedianQemuCPU   float64   `json:"median_qemu_cpu_s"`
	SpreadPct       float64   `json:"spread_pct"`
}

type row struct {
	Name  string             `json:"name"`
	Title string             `json:"title"`
	Unit  string             `json:"unit"`
	Desc  string             `json:"description"`
	Modes map[string]*series `json:"modes"`
	// Speedups are virtio-fs median throughput over 9p's (> 1: virtio-fs
	// is faster), keyed by virtio-fs mode.
	Speedups map[string]float64 `json:"speedup_over_9p,omitempty"`
}

type target struct {
	Description string          `json:"description"`
	Pass        *bool           `json:"pass"`
	Rows        map[string]bool `json:"rows"`
}

type machine struct {
	Kernel    string  `json:"host_kernel"`
	CPU       string  `json:"cpu_model"`
	NProc     int     `json:"nproc"`
	MemTotal  string  `json:"mem_total"`
	Go        string  `json:"go_version"`
	QEMU      string  `json:"qemu_version"`
	Date      string  `json:"date"`
	WorkdirFS string  `json:"workdir_fs"`
	Krunbench string  `json:"krunbench_commit"`
	LoadStart string  `json:"loadavg_start"`
	LoadEnd   string  `json:"loadavg_end"`
	BusyStart float64 `json:"cpu_busy_pct_start"`
}

type results struct {
	cfg     *config
	Machine machine `json:"machine"`
	Config  struct {
		Runs        int      `json:"runs"`
		SizeBytes   int64    `json:"read_size_bytes"`
		Dirs        int      `json:"dirs"`
		FilesPerDir int      `json:"files_per_dir"`
		Creates     int      `json:"creates"`
		Bin         string   `json:"krunbench_bin"`
		GuestKernel string   `json:"guest_kernel"`
		Accel       string   `json:"accel"`
		CPUs        int      `json:"vcpus"`
		MemMiB      int      `json:"mem_mib"`
		QueueSize   int      `json:"virtiofs_queue_size"`
		Guest       string   `json:"guest"`
		Order       string   `json:"order"`
		CacheDrop   string   `json:"cache_drop"`
		HostCache   string   `json:"host_cache"`
		Caching     []string `json:"caching"`
	} `json:"config"`
	Modes   []*mode              `json:"modes"`
	Rows    []*row               `json:"workloads"`
	Boots   map[string][]float64 `json:"boot_wall_s"`
	Targets map[string]*target   `json:"targets"`
	Elapsed float64              `json:"elapsed_s"`
}

func unitOf(w string) string {
	return map[string]string{"stat": "files/s", "read": "MB/s", "create": "ops/s"}[w]
}

// unitScale turns the runner's units (files, bytes, ops) into the row's.
func unitScale(w string) float64 {
	if w == "read" {
		return 1e6
	}
	return 1
}

func newResults(cfg *config, info machine, modes map[string]*mode) *results {
	r := &results{cfg: cfg, Machine: info, Boots: map[string][]float64{}}
	c := &r.Config
	c.Runs, c.SizeBytes, c.Dirs, c.FilesPerDir, c.Creates = cfg.runs, cfg.size, cfg.dirs, cfg.filesPerDir, cfg.creates
	c.Bin, c.GuestKernel, c.Accel, c.CPUs, c.MemMiB, c.QueueSize = cfg.bin, cfg.kernel, cfg.accel, cfg.cpus, cfg.memMiB, cfg.queueSize
	c.Guest = "qemu -M microvm, memory-backend-memfd share=on for every mode, virtio-mmio (modern), console on virtconsole; root is an initramfs whose /init is guestbench/runner; the filesystem under test at /mnt"
	c.Order = "each repetition boots every mode once, in rotated order; a boot takes one sample of every workload, in -workloads order"
	c.CacheDrop = "in the guest, sync; echo 3 > /proc/sys/vm/drop_caches before every sample"
	c.HostCache = "warm: the host reads the file and walks the tree before every boot, so no mode reads the host disk"
	c.Caching = []string{
		"virtio-fs: the kernel's defaults (no DAX: vhost-user-fs-device has no cache window in QEMU 7.2); krunbench serve's INIT reply and 1 s entry/attr timeouts decide the caching",
		"9p: " + modes[mode9p].opts9p + "; cache=loose keeps the page cache and dentries as virtio-fs does (cache=none, the kernel's default and the 9p-none what-if mode, has no page cache and revalidates every lookup)",
	}
	for _, name := range cfg.modes {
		r.Modes = append(r.Modes, modes[name])
	}
	nfiles := cfg.dirs * cfg.filesPerDir
	desc := map[string]*row{
		"stat": {Title: fmt.Sprintf("find+stat %d files", nfiles),
			Desc: "walk the tree (open+getdents of each directory, like find) and lstat(2) every entry; files/s counts regular files"},
		"read": {Title: fmt.Sprintf("seq read %s", human(cfg.size)),
			Desc: "read a file made on the host in 1 MiB read(2)s (MB = 10^6 bytes)"},
		"create": {Title: fmt.Sprintf("create+unlink %d files", cfg.creates),
			Desc: "in a fresh empty directory, per file: open(O_CREAT|O_EXCL|O_WRONLY), close, unlink; one op is that triple"},
	}
	for _, w := range cfg.workloads {
		x := desc[w]
		x.Name, x.Unit, x.Modes = w, unitOf(w), map[string]*series{}
		r.Rows = append(r.Rows, x)
	}
	return r
}

func (r *results) add(wl, mode string, m measure) {
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

func (r *results) addBoot(mode string, secs float64) {
	r.Boots[mode] = append(r.Boots[mode], secs)
}

func pick(ms []measure, f func(measure) float64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}

func (r *results) finish(elapsed time.Duration) {
	r.Elapsed = elapsed.Seconds()
	r.Machine.LoadEnd = hostinfo.LoadAvg()
	stat := &target{Description: fmt.Sprintf("virtio-fs >= %.0fx 9p on the metadata walk: find+stat median files/s, each virtio-fs mode over 9p", targetStat), Rows: map[string]bool{}}
	read := &target{Description: "virtio-fs not slower than 9p on the sequential read: median MB/s, each virtio-fs mode over 9p >= 1", Rows: map[string]bool{}}
	for _, x := range r.Rows {
		for _, s := range x.Modes {
			vals := pick(s.Samples, func(m measure) float64 { return m.Value })
			s.Median = hostinfo.Median(vals)
			if s.Median > 0 {
				s.SpreadPct = 100 * (slices.Max(vals) - slices.Min(vals)) / s.Median
			}
			s.MedianSeconds = hostinfo.Median(pick(s.Samples, func(m measure) float64 { return m.Seconds }))
			s.MedianServerCPU = hostinfo.Median(pick(s.Samples, func(m measure) float64 { return m.ServerCPU }))
			s.MedianQemuCPU = hostinfo.Median(pick(s.Samples, func(m measure) float64 { return m.QemuCPU }))
		}
		p9 := x.Modes[mode9p]
		if p9 == nil || p9.Median <= 0 {
			continue
		}
		x.Speedups = map[string]float64{}
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			if s == nil || !m.virtiofs {
				continue
			}
			sp := s.Median / p9.Median
			x.Speedups[m.Name] = sp
			if m.Name != modeNoTap && m.Name != modeTap {
				continue
			}
			switch x.Name {
			case "stat":
				stat.Rows[m.Name] = sp >= targetStat
			case "read":
				read.Rows[m.Name] = sp >= targetRead
			}
		}
	}
	r.Targets = map[string]*target{"stat_ge_2x_9p": stat, "read_ge_9p": read}
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
		return fmt.Sprintf("%.2f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// printTable prints medians (rows: workloads, columns: modes), the
// speedups over 9p, then the host CPU time behind them and the targets.
func (r *results) printTable(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "\nguest benchmark: median of %d boots per mode; %s, %d vCPU, %d MiB; speedup = virtio-fs / %s throughput\n",
		c.runs, c.accel, c.cpus, c.memMiB, "9p ("+c.cache9p+")")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"workload", "unit"}
	for _, m := range r.Modes {
		head = append(head, m.Label)
	}
	var vfs []*mode
	for _, m := range r.Modes {
		if m.virtiofs {
			vfs = append(vfs, m)
			head = append(head, "speedup "+strings.TrimPrefix(m.Label, "virtio-fs "))
		}
	}
	head = append(head, "spread", "")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	cell := func(x *row, name string, f func(*series) float64, unit string) string {
		if s := x.Modes[name]; s != nil {
			return fmtValue(unit, f(s))
		}
		return "-"
	}
	speed := func(x *row, name string) string {
		if v, ok := x.Speedups[name]; ok {
			return fmt.Sprintf("%.2fx", v)
		}
		return "-"
	}
	for _, x := range r.Rows {
		line := []string{x.Title, x.Unit}
		spread := 0.0
		for _, m := range r.Modes {
			line = append(line, cell(x, m.Name, func(s *series) float64 { return s.Median }, x.Unit))
			if s := x.Modes[m.Name]; s != nil {
				spread = max(spread, s.SpreadPct)
			}
		}
		for _, m := range vfs {
			line = append(line, speed(x, m.Name))
		}
		line = append(line, fmt.Sprintf("%.0f%%", spread), "")
		fmt.Fprintln(tw, strings.Join(line, "\t"))
		line = []string{x.Title, "s"}
		for _, m := range r.Modes {
			line = append(line, cell(x, m.Name, func(s *series) float64 { return s.MedianSeconds }, "s"))
		}
		for range len(vfs) + 2 {
			line = append(line, "")
		}
		fmt.Fprintln(tw, strings.Join(line, "\t"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nhost CPU seconds in the timed part (median): qemu / krunbench serve\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head = []string{"workload"}
	for _, m := range r.Modes {
		head = append(head, m.Label)
	}
	fmt.Fprintln(tw, strings.Join(append(head, ""), "\t"))
	for _, x := range r.Rows {
		line := []string{x.Title}
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			switch {
			case s == nil:
				line = append(line, "-")
			case m.virtiofs:
				line = append(line, fmt.Sprintf("%.2f / %.2f", s.MedianQemuCPU, s.MedianServerCPU))
			default:
				line = append(line, fmt.Sprintf("%.2f", s.MedianQemuCPU))
			}
		}
		fmt.Fprintln(tw, strings.Join(append(line, ""), "\t"))
	}
	tw.Flush()

	fmt.Fprintln(w)
	for _, key := range []string{"stat_ge_2x_9p", "read_ge_9p"} {
		t := r.Targets[key]
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
		fmt.Fprintf(w, "target %-58s %s", t.Description[:strings.Index(t.Description, ":")], verdict)
		if len(misses) > 0 {
			fmt.Fprintf(w, " (missed: %s)", strings.Join(misses, ", "))
		}
		fmt.Fprintln(w)
	}
}

// collectInfo describes the machine and the build under test.
func collectInfo(cfg *config, workdir string) machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:])
	}
	m.CPU = hostinfo.ProcField("/proc/cpuinfo", "model name")
	m.MemTotal = hostinfo.ProcField("/proc/meminfo", "MemTotal")
	m.LoadStart = hostinfo.LoadAvg()
	m.BusyStart = hostinfo.CPUBusy(time.Second)
	if out, err := exec.Command(cfg.qemu, "--version").Output(); err == nil {
		m.QEMU, _, _ = strings.Cut(string(out), "\n")
	}
	var sfs unix.Statfs_t
	if unix.Statfs(workdir, &sfs) == nil {
		m.WorkdirFS = fmt.Sprintf("0x%x", sfs.Type)
		if sfs.Type == unix.EXT4_SUPER_MAGIC {
			m.WorkdirFS = "ext4"
		}
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
