package main

import (
	"fmt"
	"github.com/krunbench/krunbench/bench/internal/cli"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// finishConcurrency derives the rules rows' costs and the mixed row's
// latency ratios, and returns the small-client latency target.
func (r *results) finishConcurrency() *target {
	p99 := &target{Description: fmt.Sprintf("small-client p99 under the writer <= %.0fx idle (tap): median over rounds of p99 under the writer / idle p99 <= %.1f", targetP99UnderWriter, targetP99UnderWriter), Rows: map[string]bool{}}
	for _, x := range r.Rows {
		c, rules := x.Modes[modeTap], x.Modes[modeRules]
		x.Rules100OverheadPct = pairOf(rules, c, extraTimePct)
		x.Rules100CPUPct = pairOf(rules, c, extraCPUPct)
		x.Rules100ExtraUsPerUnit = pairOf(rules, c, extraUsPerUnit)
		if x.Name != rowMixed {
			continue
		}
		for name, s := range x.Modes {
			if p := pairOf(s, s, p99Ratio); p != nil {
				if x.P99UnderWriter == nil {
					x.P99UnderWriter = map[string]*paired{}
				}
				x.P99UnderWriter[name] = p
			}
		}
		if p := x.P99UnderWriter[modeTap]; p != nil {
			p99.Rows[x.Name] = p.Median <= targetP99UnderWriter
		}
	}
	return p99
}

// p99Ratio is one sample's p99 under the writer over its idle p99 (a and
// b are the same sample).
func p99Ratio(a, _ measure) (float64, bool) {
	if a.Latency == nil || a.Latency.IdleP99Us <= 0 {
		return 0, false
	}
	return a.Latency.BusyP99Us / a.Latency.IdleP99Us, true
}

// writeShare is the percentage of a sample's calls under the writer
// made during its write() phase.
func writeShare(l *latency) float64 {
	if n := l.WritePhaseCalls + l.FsyncPhaseCalls; n > 0 {
		return 100 * float64(l.WritePhaseCalls) / float64(n)
	}
	return 0
}

// medianLatency is the median over samples of one latency field.
func medianLatency(s *series, f func(*latency) float64) (float64, bool) {
	var v []float64
	for _, m := range s.Samples {
		if m.Latency != nil {
			v = append(v, f(m.Latency))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	slices.Sort(v)
	return v[len(v)/2], true
}

// printConcurrency prints the latency, rules and memory tables, where the
// run has them.
func (r *results) printConcurrency(w io.Writer) {
	if x := r.row(rowMixed); x != nil && len(x.Modes) > 0 {
		fmt.Fprintf(w, "mixed: the small stat client's latency (us, medians over rounds), idle and under the %s writer\n", cli.Human(r.cfg.mixedSize))
		var rows [][]string
		for _, m := range r.Modes {
			s := x.Modes[m.Name]
			if s == nil {
				continue
			}
			line := []string{m.Label}
			for _, f := range []func(*latency) float64{
				func(l *latency) float64 { return l.IdleP50Us }, func(l *latency) float64 { return l.IdleP99Us },
				func(l *latency) float64 { return l.BusyP50Us }, func(l *latency) float64 { return l.BusyP99Us },
				func(l *latency) float64 { return l.BusyMaxUs },
				func(l *latency) float64 { return l.WritePhaseP99Us }, func(l *latency) float64 { return l.FsyncPhaseP99Us },
				func(l *latency) float64 { return writeShare(l) }, func(l *latency) float64 { return l.WritePhaseSeconds },
				func(l *latency) float64 { return runqPct(l) },
			} {
				v, _ := medianLatency(s, f)
				format := "%.0f"
				if len(line) == 9 { // write() s
					format = "%.2f"
				}
				if v < 0 { // runqPct: not measured
					line = append(line, "–")
					continue
				}
				line = append(line, fmt.Sprintf(format, v))
			}
			ratio := fmtRatio(x.P99UnderWriter[m.Name])
			if m.Name == modeTap {
				ratio = r.fmtTarget(x.P99UnderWriter[m.Name], "p99_under_writer_le_2x_idle", x.Name)
			}
			rows = append(rows, append(line, ratio))
		}
		printRows(w, []string{"mode", "idle p50", "idle p99", "writer p50", "writer p99", "writer max", "write() p99", "fsync p99", "% in write()", "write() s", "slow runq %", "p99 ratio"}, rows)
		fmt.Fprintln(w)
	}
	var ruleRows []*row
	for _, x := range r.Rows {
		if x.Rules100OverheadPct != nil {
			ruleRows = append(ruleRows, x)
		}
	}
	if len(ruleRows) > 0 {
		fmt.Fprintln(w, "100 non-matching rules over tap (c), within rounds: median [p25, p75]")
		var rows [][]string
		for _, x := range ruleRows {
			p := x.Rules100ExtraUsPerUnit
			perUnit := "-"
			if p != nil {
				perUnit = fmt.Sprintf("%+.2f [%+.2f,%+.2f] per %s", p.Median, p.P25, p.P75, strings.TrimSuffix(x.Unit, "/s"))
			}
			rows = append(rows, []string{x.Title, fmtPct(x.Rules100OverheadPct), fmtPct(x.Rules100CPUPct), perUnit})
		}
		printRows(w, []string{"workload", "extra time", "extra server cpu", "extra us per unit"}, rows)
		fmt.Fprintln(w)
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "memory: server RSS after looking up %d inodes (cold find+lstat through a fresh mount; RLIMIT_NOFILE %d)\n", m.Files, m.RlimitNofile)
		var rows [][]string
		for _, mo := range r.Modes {
			run := m.Modes[mo.Name]
			if run == nil {
				continue
			}
			first := run.FirstError
			if len(first) > 60 {
				first = first[len(first)-60:]
			}
			rows = append(rows, []string{mo.Label, fmt.Sprint(run.RSSIdleKiB), fmt.Sprint(run.RSSAfterKiB), fmt.Sprint(run.HWMKiB), fmt.Sprint(run.FDs), fmt.Sprint(run.Seen), fmt.Sprint(run.Failed), fmt.Sprint(run.StillServes), first})
		}
		printRows(w, []string{"mode", "RSS idle KiB", "RSS after KiB", "peak KiB", "fds", "files seen", "failed", "still serves", "first error"}, rows)
		fmt.Fprintf(w, "virtiofsd: %s\n\n", m.Virtiofsd)
	}
}

// printRows writes a right-aligned table: the header, then one line a row,
// columns two spaces apart.
func printRows(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, cells := range append([][]string{header}, rows...) {
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}

// runqPct is the slowest calls' runqueue share, or -1 when the sample did
// not measure it (fusebench without -mixed-runq).
func runqPct(l *latency) float64 {
	if l.SlowRunqPct == nil {
		return -1
	}
	return *l.SlowRunqPct
}
