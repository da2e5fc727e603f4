package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
	"github.com/krunbench/krunbench/bench/internal/perfprof"
)

// Profile boots (-profile DIR): after the counting boots, each mode
// boots -profile-runs more times (rotated, like the timed boots) with
// perf attached to its backend: for every workload one `perf record -g`
// (cpu-clock at profileFreq Hz) and one `perf stat` (task-clock, context
// switches, CPU migrations, page faults, system calls in all and by
// kind), each started with its events disabled and enabled only from the
// workload's begin line to its end line (perf's --control fifo, each
// command acknowledged). So every number covers the same part of the
// guest's work as the timed samples, and both backends are recorded in
// the same run. perf's own CPU is not the backend's (it runs in its own
// process) but competes for this 2-core machine's CPUs, so profile boots
// are never timed samples. The raw data stays in DIR
// (MODE.N.WORKLOAD.perf.data, .stat.csv), the table (profile.txt) is
// what bench/internal/perfprof makes of it, per 1,000 requests of the
// counting boot.
const (
	profileFreq = 4000
	// perfReady bounds perf's start (opening some 360 tracepoints per
	// thread) and each acknowledged command.
	perfReady = 60 * time.Second
)

// profileSyscalls are the system calls perf stat counts one by one: those
// either backend makes per request in these workloads (the rest is
// "other", raw_syscalls:sys_enter less these). Not all 360
// syscalls:sys_enter_* tracepoints: every event attached to a thread is
// switched out and in with it, and with all of them perf stat's own cost
// at each of the backend's 17,000 context switches per stat walk took its
// task-clock from about 0.7 s to 2.8 s (and virtiofsd's to 2.4 s), most of
// it in finish_task_switch, where it passed for the scheduler's.
var profileSyscalls = []string{"read", "write", "epoll_pwait", "ppoll", "futex", "nanosleep", "newfstatat",
	"newfstat", "statx", "openat", "close", "name_to_handle_at", "preadv", "getdents64", "unlinkat"}

func profileSyscallEvents() string {
	ev := make([]string, len(profileSyscalls))
	for i, s := range profileSyscalls {
		ev[i] = "syscalls:sys_enter_" + s
	}
	return strings.Join(ev, ",")
}

// perfProc is one perf process attached to the backend, driven through
// its control fifo.
type perfProc struct {
	name     string
	fifos    []string
	cmd      *exec.Cmd
	ctl, ack *os.File
	acks     *bufio.Reader
	exited   chan struct{}
}

// startPerf runs perf SUBCOMMAND with args and a control fifo pair in dir.
func startPerf(dir, name string, log io.Writer, args ...string) (*perfProc, error) {
	ctl, ack := filepath.Join(dir, name+".ctl"), filepath.Join(dir, name+".ack")
	for _, f := range []string{ctl, ack} {
		os.Remove(f)
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			return nil, err
		}
	}
	p := &perfProc{name: name, fifos: []string{ctl, ack}, exited: make(chan struct{})}
	var err error
	// Read-write opens never block on a fifo, whoever opens first.
	if p.ctl, err = os.OpenFile(ctl, os.O_RDWR, 0); err != nil {
		return nil, err
	}
	if p.ack, err = os.OpenFile(ack, os.O_RDWR, 0); err != nil {
		p.ctl.Close()
		return nil, err
	}
	p.acks = bufio.NewReader(p.ack)
	argv := append([]string{args[0], "-D", "-1", "--control", "fifo:" + ctl + "," + ack}, args[1:]...)
	p.cmd = exec.Command("perf", argv...)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(log, "perf: %s\n", strings.Join(p.cmd.Args, " "))
	if err := p.cmd.Start(); err != nil {
		p.close()
		return nil, fmt.Errorf("start perf %s: %w", args[0], err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// command sends one control command and waits for perf's ack.
func (p *perfProc) command(c string) error {
	if _, err := p.ctl.WriteString(c + "\n"); err != nil {
		return err
	}
	p.ack.SetReadDeadline(time.Now().Add(perfReady))
	line, err := p.acks.ReadString('\n')
	if err != nil {
		return fmt.Errorf("perf %s: no ack for %q: %w", p.name, c, err)
	}
	// perf writes "ack\n" with its C string's NUL, which starts the next
	// read.
	if strings.Trim(line, "\x00\n ") != "ack" {
		return fmt.Errorf("perf %s: %q answered %q", p.name, c, line)
	}
	return nil
}

// finish ends perf with SIGINT (it writes its output then) and waits.
func (p *perfProc) finish() error {
	defer p.close()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
		return nil
	case <-time.After(perfReady):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("perf %s did not exit on SIGINT", p.name)
	}
}

func (p *perfProc) close() {
	p.ctl.Close()
	p.ack.Close()
	for _, f := range p.fifos {
		os.Remove(f)
	}
}

// profiler is one profile boot's perf processes: a record and a stat per
// workload.
type profiler struct {
	dir, prefix string
	log         io.Writer
	perfs       map[string][2]*perfProc
}

func (pr *profiler) dataFile(w string) string {
	return filepath.Join(pr.dir, pr.prefix+"."+w+".perf.data")
}
func (pr *profiler) statFile(w string) string {
	return filepath.Join(pr.dir, pr.prefix+"."+w+".stat.csv")
}

// attach starts the perf processes on the backend's processes (every
// thread, and threads started later: perf's counters are inherited) and
// waits until each answers.
func (pr *profiler) attach(pids []int, workloads []string) error {
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = strconv.Itoa(p)
	}
	pidList := strings.Join(ids, ",")
	pr.perfs = map[string][2]*perfProc{}
	for _, w := range workloads {
		rec, err := startPerf(pr.dir, pr.prefix+"."+w+".record", pr.log, "record", "-p", pidList, "-g",
			"-e", "cpu-clock", "-F", strconv.Itoa(profileFreq), "-o", pr.dataFile(w))
		if err != nil {
			return err
		}
		st, err := startPerf(pr.dir, pr.prefix+"."+w+".stat", pr.log, "stat", "-p", pidList, "-x,", "-o", pr.statFile(w),
			"-e", "task-clock,context-switches,cpu-migrations,page-faults,raw_syscalls:sys_enter", "-e", profileSyscallEvents())
		pr.perfs[w] = [2]*perfProc{rec, st}
		if err != nil {
			return err
		}
	}
	for _, w := range workloads {
		for _, p := range pr.perfs[w] {
			if err := p.command("ping"); err != nil {
				return err
			}
		}
	}
	return nil
}

// enable and disable start and stop one workload's counting.
func (pr *profiler) enable(w string) error  { return pr.each(w, "enable") }
func (pr *profiler) disable(w string) error { return pr.each(w, "disable") }

func (pr *profiler) each(w, c string) error {
	for _, p := range pr.perfs[w] {
		if p == nil {
			continue
		}
		if err := p.command(c); err != nil {
			return err
		}
	}
	return nil
}

// finish ends every perf process.
func (pr *profiler) finish() error {
	var errs []error
	for _, ps := range pr.perfs {
		for _, p := range ps {
			if p != nil {
				errs = append(errs, p.finish())
			}
		}
	}
	pr.perfs = nil
	return errors.Join(errs...)
}

// serverProcs is how many processes the backend runs once a front-end
// connected: virtiofsd forks its sandboxed worker then and waits for it.
func (m *mode) serverProcs() int {
	if m.krunbench {
		return 1
	}
	return 2
}

// settledTree waits until the backend's process tree has at least procs
// processes and has not changed for a moment, so perf attaches to the
// process that serves.
func settledTree(srv *proc, procs int) []int {
	pids := srv.tree()
	for deadline := time.Now().Add(socketWait); len(pids) < procs && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		pids = srv.tree()
	}
	for stable, deadline := 0, time.Now().Add(3*time.Second); stable < 3 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now := srv.tree()
		if slices.Equal(now, pids) {
			stable++
		} else {
			pids, stable = now, 0
		}
	}
	return pids
}

// profileSample is what one profile boot gives for one workload.
type profileSample struct {
	Seconds float64 `json:"seconds"`
	// ProcCPU is the backend's CPU seconds from /proc over the workload,
	// perf's work in its threads included.
	ProcCPU float64           `json:"proc_cpu_s"`
	Stat    *perfprof.Stat    `json:"stat"`
	Profile *perfprof.Profile `json:"profile"`
}

// taskClockMs scales sampled nanoseconds to perf stat's task-clock: on
// this PVM guest cpu-clock samples fall only where the kernel enables
// interrupts, and a third to a half of the expected samples never come
// (fewer for some backends than others), so the samples give the shares
// and task-clock the total.
func (s *profileSample) taskClockMs(ns float64) float64 {
	if s.Profile.TotalNs == 0 {
		return 0
	}
	return ns / float64(s.Profile.TotalNs) * s.Stat.TaskClockMs
}

// analyze reads a profile boot's perf output for one workload.
func (pr *profiler) analyze(w string, goBackend bool) (*profileSample, error) {
	f, err := os.Open(pr.statFile(w))
	if err != nil {
		return nil, err
	}
	st, err := perfprof.ParseStat(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pr.statFile(w), err)
	}
	cmd := exec.Command("perf", "script", "-i", pr.dataFile(w), "-F", "comm,tid,time,event,period,ip,sym,dso")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	prof, perr := perfprof.Parse(out, goBackend)
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("perf script %s: %w: %s", pr.dataFile(w), err, stderr.String())
	}
	if perr != nil {
		return nil, fmt.Errorf("%s: %w", pr.dataFile(w), perr)
	}
	return &profileSample{Stat: st, Profile: prof}, nil
}

// profileRun collects every profile boot: mode -> workload -> samples.
type profileRun map[string]map[string][]*profileSample

func (p profileRun) add(mode, w string, s *profileSample) {
	if p[mode] == nil {
		p[mode] = map[string][]*profileSample{}
	}
	p[mode][w] = append(p[mode][w], s)
}

// profileBoots runs -profile-runs profile boots of every mode and prints
// the table (also DIR/profile.txt, the numbers in DIR/profile.json).
func profileBoots(ctx context.Context, cfg *config, modes map[string]*mode, tmp, share string, res *results, out io.Writer) error {
	if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
		return err
	}
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("-profile: %w", err)
	}
	run := profileRun{}
	err := rotatedBoots(ctx, cfg, cfg.profileRuns, share, func(rep int, name string) error {
		m := modes[name]
		pr := &profiler{dir: cfg.profile, prefix: fmt.Sprintf("%s.%d", name, rep)}
		b, err := boot(ctx, cfg, m, tmp, share, fmt.Sprintf("%s.profile%d", name, rep), m.countInitrd, false, pr)
		if err != nil {
			return fmt.Errorf("%s profile boot %d: %w", name, rep+1, err)
		}
		for _, w := range m.countWorkloads(cfg) {
			if b.failed[w] != "" {
				fmt.Fprintf(os.Stderr, "[profile %d/%d] %-15s %-7s FAILED in the guest: %s\n", rep+1, cfg.profileRuns, name, w, b.failed[w])
				continue
			}
			s, err := pr.analyze(w, m.krunbench)
			if err != nil {
				return fmt.Errorf("%s profile boot %d: %w", name, rep+1, err)
			}
			s.Seconds, s.ProcCPU = b.samples[w].Seconds, b.samples[w].ServerCPU
			run.add(name, w, s)
			fmt.Fprintf(os.Stderr, "[profile %d/%d] %-15s %-12s %8.3fs  task-clock %7.1f ms  samples %6d (%7.1f ms)  cs %6d  migrations %5d  syscalls %7d\n",
				rep+1, cfg.profileRuns, name, w, s.Seconds, s.Stat.TaskClockMs, s.Profile.Samples, float64(s.Profile.TotalNs)/1e6,
				s.Stat.ContextSwitches, s.Stat.Migrations, s.Stat.Syscalls)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var table bytes.Buffer
	printProfile(&table, cfg, modes, run, res)
	out.Write(table.Bytes())
	if err := os.WriteFile(filepath.Join(cfg.profile, "profile.txt"), table.Bytes(), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(run, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.profile, "profile.json"), js, 0o644)
}

// requestsOf is the counting boot's request count of a workload in a
// mode (0: not counted).
func requestsOf(res *results, w, mode string) int {
	for _, x := range res.Rows {
		if x.Name == w {
			if s := x.Modes[mode]; s != nil {
				return s.Requests
			}
		}
	}
	return 0
}

// printProfile prints, per workload, one column per mode: perf stat's
// counts and the profile's categories per 1,000 requests (medians over
// the profile boots). Categories under profileFold of every mode's
// total are folded into their group's "rest".
func printProfile(w io.Writer, cfg *config, modes map[string]*mode, run profileRun, res *results) {
	var names []string
	for _, n := range cfg.modes {
		if len(run[n]) > 0 {
			names = append(names, n)
		}
	}
	for _, wl := range cfg.workloads {
		var cols []string
		per := map[string]float64{} // mode -> scale to "per 1,000 requests"
		for _, n := range names {
			if len(run[n][wl]) == 0 {
				continue
			}
			cols = append(cols, n)
			per[n] = 1
			if r := requestsOf(res, wl, n); r > 0 {
				per[n] = 1000 / float64(r)
			}
		}
		if len(cols) == 0 {
			continue
		}
		unit := "per 1,000 requests (counting boot)"
		for _, n := range cols {
			if requestsOf(res, wl, n) == 0 {
				unit = "per 1,000 requests where counted, else totals"
			}
		}
		fmt.Fprintf(w, "\nprofile: %s, %s; backend only, from the workload's begin to its end; median of %d profile boot(s) per mode; perf record -g -F %d, perf stat\n",
			wl, unit, cfg.profileRuns, profileFreq)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := []string{""}
		for _, n := range cols {
			head = append(head, modes[n].Label)
		}
		fmt.Fprintln(tw, strings.Join(append(head, ""), "\t"))
		row := func(label, format string, f func(s *profileSample) float64, scale bool) {
			line := []string{label}
			for _, n := range cols {
				vals := hostinfo.Pick(run[n][wl], f)
				v := hostinfo.Median(vals)
				if scale {
					v *= per[n]
				}
				line = append(line, fmt.Sprintf(format, v))
			}
			fmt.Fprintln(tw, strings.Join(append(line, ""), "\t"))
		}
		reqs := []string{"requests"}
		for _, n := range cols {
			reqs = append(reqs, strconv.Itoa(requestsOf(res, wl, n)))
		}
		fmt.Fprintln(tw, strings.Join(append(reqs, ""), "\t"))
		row("guest seconds", "%.2f", func(s *profileSample) float64 { return s.Seconds }, false)
		row("CPU ms (/proc, perf's cost in it)", "%.1f", func(s *profileSample) float64 { return 1000 * s.ProcCPU }, true)
		row("task-clock ms", "%.1f", func(s *profileSample) float64 { return s.Stat.TaskClockMs }, true)
		row("sampled ms", "%.1f", func(s *profileSample) float64 { return float64(s.Profile.TotalNs) / 1e6 }, true)
		row("context switches", "%.0f", func(s *profileSample) float64 { return float64(s.Stat.ContextSwitches) }, true)
		row("CPU migrations", "%.0f", func(s *profileSample) float64 { return float64(s.Stat.Migrations) }, true)
		row("page faults", "%.0f", func(s *profileSample) float64 { return float64(s.Stat.PageFaults) }, true)
		row("system calls", "%.0f", func(s *profileSample) float64 { return float64(s.Stat.Syscalls) }, true)
		for _, sc := range topSyscalls(run, cols, wl, per) {
			row("  "+sc, "%.0f", func(s *profileSample) float64 { return float64(s.Stat.SyscallsByName[sc]) }, true)
		}
		row("  other", "%.0f", func(s *profileSample) float64 { return float64(max(0, s.Stat.Syscalls-s.Stat.Calls())) }, true)
		fmt.Fprintln(tw, "CPU ms by category (share of samples x task-clock)\t"+strings.Repeat("\t", len(cols)))
		for _, c := range profileCategories(run, cols, wl, per) {
			if c.rest != "" {
				row("  "+c.rest, "%.1f", func(s *profileSample) float64 { return s.taskClockMs(restNs(s, c.folded)) }, true)
				continue
			}
			row("  "+c.name, "%.1f", func(s *profileSample) float64 { return s.taskClockMs(float64(s.Profile.Ns[c.name])) }, true)
		}
		tw.Flush()
	}
}

// profileFold: categories below this share of every mode's sampled time
// are folded into their group's rest.
const profileFold = 0.01

type profileCategory struct {
	name   string
	rest   string          // "GROUP: rest" for a folded row
	folded map[string]bool // the categories a rest row sums
}

func restNs(s *profileSample, folded map[string]bool) float64 {
	var ns int64
	for c, v := range s.Profile.Ns {
		if folded[c] {
			ns += v
		}
	}
	return float64(ns)
}

// profileCategories orders the categories seen: by group (kernel,
// kernel sched, kernel (at return), go, ours, c, other), within a group by their largest
// value per 1,000 requests in any mode; small ones fold into a rest row.
func profileCategories(run profileRun, cols []string, wl string, per map[string]float64) []profileCategory {
	largest, share := map[string]float64{}, map[string]float64{}
	for _, n := range cols {
		for _, s := range run[n][wl] {
			for c, v := range s.Profile.Ns {
				largest[c] = max(largest[c], float64(v)*per[n])
				share[c] = max(share[c], float64(v)/float64(s.Profile.TotalNs))
			}
		}
	}
	order := map[string]int{"kernel": 0, "kernel sched": 1, "kernel (at return)": 2, "go": 3, "ours": 4, "c": 5}
	rank := func(c string) int {
		if r, ok := order[perfprof.Group(c)]; ok {
			return r
		}
		return len(order)
	}
	names := slices.Collect(maps.Keys(largest))
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if largest[a] != largest[b] {
			if largest[a] > largest[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	var outRows []profileCategory
	folded := map[string]map[string]bool{}
	var groups []string
	for _, c := range names {
		if share[c] >= profileFold {
			outRows = append(outRows, profileCategory{name: c})
			continue
		}
		g := perfprof.Group(c)
		if folded[g] == nil {
			folded[g] = map[string]bool{}
			groups = append(groups, g)
		}
		folded[g][c] = true
	}
	for _, g := range groups {
		outRows = append(outRows, profileCategory{rest: fmt.Sprintf("%s: rest (%d under %.0f%%)", g, len(folded[g]), 100*profileFold), folded: folded[g]})
	}
	slices.SortStableFunc(outRows, func(a, b profileCategory) int {
		ga, gb := a.name, b.name
		if a.rest != "" {
			ga = a.rest
		}
		if b.rest != "" {
			gb = b.rest
		}
		return rank(ga) - rank(gb)
	})
	return outRows
}

// topSyscalls are the system calls that make up most of any mode's
// count (each at least 2% of some mode's), most frequent first.
func topSyscalls(run profileRun, cols []string, wl string, per map[string]float64) []string {
	largest := map[string]float64{}
	for _, n := range cols {
		for _, s := range run[n][wl] {
			for sc, v := range s.Stat.SyscallsByName {
				if float64(v) >= 0.02*float64(s.Stat.Syscalls) {
					largest[sc] = max(largest[sc], float64(v)*per[n])
				}
			}
		}
	}
	names := slices.Collect(maps.Keys(largest))
	slices.SortFunc(names, func(a, b string) int {
		if largest[a] != largest[b] {
			if largest[a] > largest[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return names
}
