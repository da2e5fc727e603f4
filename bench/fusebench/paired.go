package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
)

// The paired overhead measurement. The main table's tap overhead compares
// medians of separate runs minutes apart, and on a shared 2-core machine
// their spread (20-80%) swamps a 5% effect. Here no-tap, tap and
// tap+trace servers are mounted side by side on the same share, and many
// short rounds run one workload on each in turn (order rotated per
// round), so all three see the same machine state within a second or so;
// the overhead is the median over rounds of each round's own ratio.

// pairedModes are compared against the first.
var pairedModes = []string{modeNoTap, modeTap, modeTrace}

// pairedRow is one workload's paired result.
type pairedRow struct {
	Name   string `json:"name"`
	Title  string `json:"title"`
	Rounds int    `json:"rounds"`
	// Per mode over no-tap, as extra percent: the median (and the 25th and
	// 75th percentiles) of the rounds' time ratios, and the median of the
	// rounds' server-CPU ratios.
	TimePct    map[string]float64    `json:"time_overhead_pct"`
	TimeIQRPct map[string][2]float64 `json:"time_overhead_p25_p75_pct"`
	CPUPct     map[string]float64    `json:"server_cpu_overhead_pct"`
	// MedianSeconds is each mode's median round time.
	MedianSeconds map[string]float64 `json:"median_seconds"`
}

// pairedWorkload is a short workload run once per mode per round.
type pairedWorkload struct {
	name, title string
	prepare     func(share string) error
	run         func(dir string, stop <-chan struct{}) error
}

func pairedWorkloads(cfg *config) []pairedWorkload {
	const size = 64 << 20
	creates := max(cfg.creates/10, 100)
	return []pairedWorkload{
		{name: "write", title: "write 64 MiB + fsync", run: func(dir string, stop <-chan struct{}) error {
			p := filepath.Join(dir, "paired-write.dat")
			if err := writeFile(p, size, stop); err != nil {
				return err
			}
			return os.Remove(p)
		}},
		{name: "read-hostwarm", title: "read 64 MiB (host cached)",
			prepare: func(share string) error { return writeFile(filepath.Join(share, "paired-read.dat"), size, nil) },
			run: func(dir string, stop <-chan struct{}) error {
				n, err := readFile(filepath.Join(dir, "paired-read.dat"), stop)
				if err == nil && n != size {
					err = fmt.Errorf("read %d bytes, want %d", n, size)
				}
				return err
			}},
		{name: "create", title: fmt.Sprintf("create+unlink %d files", creates), run: func(dir string, stop <-chan struct{}) error {
			d := filepath.Join(dir, "paired-create")
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
			if err := createUnlink(d, creates, stop); err != nil {
				return err
			}
			return os.Remove(d)
		}},
	}
}

// runPaired mounts the three servers side by side and runs the rounds.
func runPaired(cfg *config, cl *cleanups, tmp, share string, rounds int, stop <-chan struct{}) ([]*pairedRow, error) {
	srvs := map[string]*server{}
	mnts := map[string]string{}
	for _, name := range pairedModes {
		mnt := filepath.Join(tmp, "paired-mnt-"+name)
		if err := os.Mkdir(mnt, 0o755); err != nil {
			return nil, err
		}
		m := buildModes(cfg, share, mnt, filepath.Join(tmp, "paired-trace.jsonl"))[name]
		srv, stopSrv, err := startServer(cl, m, mnt, filepath.Join(tmp, "paired-"+name+".log"))
		if err != nil {
			return nil, err
		}
		defer stopSrv()
		srvs[name], mnts[name] = srv, mnt
	}
	var rows []*pairedRow
	for _, w := range pairedWorkloads(cfg) {
		if w.prepare != nil {
			if err := w.prepare(share); err != nil {
				return nil, err
			}
		}
		secs := map[string][]float64{}
		timeRatio, cpuRatio := map[string][]float64{}, map[string][]float64{}
		for round := range rounds {
			took, cpu := map[string]float64{}, map[string]float64{}
			for _, name := range rotate(pairedModes, round) {
				if stopped(stop) {
					return nil, errStopped
				}
				srv := srvs[name]
				srv.settle()
				c0, t0 := srv.cpu(), nowSeconds()
				if err := w.run(filepath.Join(mnts[name]), stop); err != nil {
					return nil, fmt.Errorf("paired %s on %s: %w", w.name, name, err)
				}
				took[name], cpu[name] = nowSeconds()-t0, srv.cpu()-c0
				secs[name] = append(secs[name], took[name])
			}
			for _, name := range pairedModes[1:] {
				timeRatio[name] = append(timeRatio[name], took[name]/took[modeNoTap])
				if cpu[modeNoTap] > 0 {
					cpuRatio[name] = append(cpuRatio[name], cpu[name]/cpu[modeNoTap])
				}
			}
		}
		row := &pairedRow{Name: w.name, Title: w.title, Rounds: rounds, TimePct: map[string]float64{},
			TimeIQRPct: map[string][2]float64{}, CPUPct: map[string]float64{}, MedianSeconds: map[string]float64{}}
		for _, name := range pairedModes {
			row.MedianSeconds[name] = hostinfo.Median(secs[name])
		}
		for _, name := range pairedModes[1:] {
			r := slices.Sorted(slices.Values(timeRatio[name]))
			row.TimePct[name] = 100 * (hostinfo.Median(r) - 1)
			row.TimeIQRPct[name] = [2]float64{100 * (r[len(r)/4] - 1), 100 * (r[(3*len(r))/4] - 1)}
			if len(cpuRatio[name]) > 0 {
				row.CPUPct[name] = 100 * (hostinfo.Median(cpuRatio[name]) - 1)
			}
		}
		rows = append(rows, row)
		fmt.Fprintf(os.Stderr, "paired %-14s tap %+5.1f%%  trace %+5.1f%% (%d rounds)\n", w.name, row.TimePct[modeTap], row.TimePct[modeTrace], rounds)
	}
	return rows, nil
}

// epoch is where nowSeconds counts from (monotonic).
var epoch = time.Now()

func nowSeconds() float64 { return time.Since(epoch).Seconds() }

// pairedTarget is the tap target judged on the paired rows.
func pairedTarget(rows []*pairedRow) *target {
	t := &target{Description: fmt.Sprintf("paired tap overhead <= %.0f%%: median over rounds of tap (c) and trace (d) time over no-tap (b), servers side by side", targetOverheadPct), Rows: map[string]bool{}}
	for _, r := range rows {
		t.Rows[r.Name+" tap"] = r.TimePct[modeTap] <= targetOverheadPct
		t.Rows[r.Name+" trace"] = r.TimePct[modeTrace] <= targetOverheadPct
	}
	return t
}

// printPaired prints the paired table.
func printPaired(w io.Writer, rows []*pairedRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\npaired overhead over no-tap (servers mounted side by side, one short run each per round, order rotated; median of per-round ratios [p25, p75])\n")
	fmt.Fprintf(w, "%28s %7s %22s %22s %12s %12s\n", "workload", "rounds", "tap time", "trace time", "tap cpu", "trace cpu")
	for _, r := range rows {
		iq := func(m string) string {
			return fmt.Sprintf("%+5.1f%% [%+.1f, %+.1f]", r.TimePct[m], r.TimeIQRPct[m][0], r.TimeIQRPct[m][1])
		}
		fmt.Fprintf(w, "%28s %7d %22s %22s %+11.1f%% %+11.1f%%\n", r.Title, r.Rounds, iq(modeTap), iq(modeTrace), r.CPUPct[modeTap], r.CPUPct[modeTrace])
	}
}
