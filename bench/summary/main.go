// Command summary turns the JSON files make bench writes under
// bench/results into the markdown tables of issue 15's closing note:
// krunbench against go-fuse and passthrough_hp on /dev/fuse (cold and
// warm, default and tuned settings), the concurrency and mixed rows, the
// guest path against virtiofsd, memory at 100k inodes and the cost of 100
// rules (issue 14), each with its target and whether it was met. It reads
// what fusebench and guestbench computed (medians over rounds of ratios
// taken within rounds) and judges them against the same targets; it
// measures nothing. A missing file is said so in the output and skipped.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
	"github.com/krunbench/krunbench/bench/internal/results"
)

// Issue 15's targets (bench/README.md), repeated here because summary
// judges the ratios the JSON holds.
const (
	targetOverGoFuse  = 1.2 // ours / go-fuse throughput, every /dev/fuse row
	targetOverPtHP    = 1.0 // ours / passthrough_hp throughput, every row
	targetP99Ratio    = 2.0 // small client's p99 under the writer / idle
	targetGuestCPU    = 0.8 // backend CPU per 1,000 requests / virtiofsd's
	targetGuestWall   = 1.0 // guest workload wall time / virtiofsd's
	targetGuestRSS    = 1.0 // backend RSS after the memory walk / virtiofsd's
	targetTapOverhead = 5.0 // percent, tap over no-tap
	ours              = "tap"
	goFuse            = "go-fuse"
	ptHP              = "passthrough_hp"
	writeback         = "writeback"       // krunbench serve --writeback (fusebench's writeback.go)
	guestOurs         = "virtiofs-tap"    // krunbench with virtiofsd's offer (--readdirplus auto)
	guestPeer         = "virtiofsd"       //
	guestAsShipped    = "virtiofs-always" // krunbench's default offer: shown, not judged
	concurrencyMixed  = "mixed"
)

var concurrencyRows = []string{"par-randread", "par-stat", "par-create", concurrencyMixed}

func main() {
	dir := flag.String("dir", "results", "directory holding the JSON files")
	fuse := flag.String("fuse", "fuse.json", "fusebench, default settings (in -dir)")
	tuned := flag.String("tuned", "fuse-tuned.json", "fusebench, tuned settings (in -dir)")
	guest := flag.String("guest", "guest.json", "guestbench (in -dir)")
	tui := flag.String("tui", "tui.json", "tuibench (in -dir)")
	boot := flag.String("boot", "boot.json", "bootbench (in -dir)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "summary: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if !summarise(os.Stdout, *dir, *fuse, *tuned, *guest, *tui, *boot) {
		os.Exit(1)
	}
}

// summarise writes the whole summary of the files in dir (fusebench
// default and tuned, guestbench, tuibench, bootbench) to w; false if a
// file could not be read (said on stderr; a missing one is said in w).
func summarise(w io.Writer, dir, fuse, tuned, guest, tui, boot string) bool {
	s := &summary{w: w}
	steps := []struct {
		file string
		fn   func(string) error
	}{
		{fuse, s.fuse}, {tuned, s.fuse}, {guest, s.guest}, {tui, s.tui}, {boot, s.boot},
	}
	ok := true
	for _, st := range steps {
		path := filepath.Join(dir, st.file)
		if err := st.fn(path); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(s.w, "\n_%s: not found, nothing to summarise_\n", path)
		} else if err != nil {
			fmt.Fprintf(os.Stderr, "summary: %s: %v\n", path, err)
			ok = false
		}
	}
	s.verdicts()
	return ok
}

// summary prints the tables and collects every verdict for the closing
// list.
type summary struct {
	w      io.Writer
	met    []string
	missed []string
	// unjudged: the file in hand is not one the targets apply to.
	unjudged bool
}

// judge records one target's verdict and returns the table's word for it.
func (s *summary) judge(what string, ok bool) string {
	if s.unjudged {
		return "(not judged)"
	}
	if ok {
		s.met = append(s.met, what)
		return "met"
	}
	s.missed = append(s.missed, what)
	return "**missed**"
}

func (s *summary) verdicts() {
	fmt.Fprintf(s.w, "\n### Verdicts\n\n%d targets met, %d missed.\n", len(s.met), len(s.missed))
	for _, m := range s.missed {
		fmt.Fprintf(s.w, "- missed: %s\n", m)
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not a results file: %w", err)
	}
	return nil
}

// ratioCell prints a ratio taken within rounds: median [p25–p75].
func ratioCell(p *results.Paired) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.2fx [%.2f–%.2f]", p.Median, p.P25, p.P75)
}

// pctCell prints a percentage taken within rounds: median [p25, p75].
func pctCell(p *results.Paired) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%+.1f%% [%+.1f, %+.1f]", p.Median, p.P25, p.P75)
}

func median(s *results.Series) string {
	if s == nil {
		return "–"
	}
	return fmt.Sprintf("%.0f (±%.0f%%)", s.Median, s.SpreadPct/2)
}

func (s *summary) fuse(path string) error {
	var r results.FuseFile
	if err := readJSON(path, &r); err != nil {
		return err
	}
	settings := r.Settings
	if settings == "" {
		settings = "tuned"
	}
	fmt.Fprintf(s.w, "\n## /dev/fuse, %s settings (%s)\n\n", settings, filepath.Base(path))
	fmt.Fprintf(s.w, "%s; %d rounds; %s; krunbench %s; fs.pipe-max-size %d; load at start %s; %.0f s.\n",
		orNone(r.Label), r.Config.Runs, r.Machine.Date, r.Machine.Krunbench, r.Machine.PipeMaxSize, r.Machine.LoadStart, r.Elapsed)
	if r.Config.Quick {
		fmt.Fprintln(s.w, "\n**-quick run: sizes shrunk, the numbers only show that every row runs.**")
	}
	for _, sk := range r.Skipped {
		fmt.Fprintf(s.w, "\n**%s SKIPPED: %s**\n", sk.Mode, sk.Reason)
	}
	tag := settings + " " // verdict names say which run they come from
	// Issue 15's targets are on default settings; a tuned run's ratios
	// are shown, not judged.
	s.unjudged = settings != "default"
	defer func() { s.unjudged = false }()
	if s.unjudged {
		fmt.Fprintln(s.w, "\nIssue 15's targets are on default settings: this run's ratios are shown for comparison and not judged.")
	}
	t := newTable(s.w, "", "| row | unit | krunbench | go-fuse | passthrough_hp | ours/go-fuse (≥1.2) | | ours/passthrough_hp (≥1.0) | |").start()
	for _, row := range r.Rows {
		if isConcurrencyRow(row) {
			continue
		}
		star := ""
		if row.CacheModeDiffers[ptHP] != "" {
			star = " *"
		}
		t.row("| %s | %s | %s | %s | %s | %s | %s | %s%s | %s |", row.Name, row.Unit,
			median(row.Modes[ours]), median(row.Modes[goFuse]), median(row.Modes[ptHP]),
			ratioCell(row.OursOverGoFuse), s.ratioVerdict(tag+row.Name+" vs go-fuse", row.OursOverGoFuse, targetOverGoFuse),
			ratioCell(row.OursOverPtHP), star, s.ratioVerdict(tag+row.Name+" vs passthrough_hp", row.OursOverPtHP, targetOverPtHP))
	}
	for _, row := range r.Rows {
		if row.WritebackOverPtHP == nil || isConcurrencyRow(row) {
			continue
		}
		t.row("| %s (writeback, both) | %s | %s | – | %s | – | | %s | %s |", row.Name, row.Unit,
			median(row.Modes[writeback]), median(row.Modes[ptHP]),
			ratioCell(row.WritebackOverPtHP), s.ratioVerdict(tag+row.Name+" (writeback, both) vs passthrough_hp", row.WritebackOverPtHP, targetOverPtHP))
	}
	fmt.Fprintln(s.w, "\nRatios: krunbench (`serve --mount`, tap on) throughput over the peer's, within rounds, median [p25–p75]; values are medians (± half the spread). `*`: passthrough_hp's writeback cache, not its server, may explain the difference. Rows \"(writeback, both)\": krunbench `serve --writeback` (off by default) against passthrough_hp, both with the kernel's writeback cache.")
	s.concurrency(tag, r.Rows)
	s.fuseMemory(r.Memory)
	s.rules(r.Rows)
	return nil
}

// ratioVerdict judges a "higher is better" ratio; no ratio, no verdict.
func (s *summary) ratioVerdict(what string, p *results.Paired, target float64) string {
	if p == nil {
		return "n/a"
	}
	return s.judge(fmt.Sprintf("%s %.2fx (target ≥ %.1fx)", what, p.Median, target), p.Median >= target)
}

func (s *summary) concurrency(tag string, rows []*results.Row) {
	conc := rowsWhere(rows, isConcurrencyRow)
	if len(conc) == 0 {
		return
	}
	t := newTable(s.w, "### Concurrency (8 clients) and mixed (1 writer + a stat client)",
		"| row | unit | krunbench | passthrough_hp | go-fuse | ours/passthrough_hp (≥1.0) | | ours/go-fuse (shown) |")
	for _, row := range conc {
		t.row("| %s | %s | %s | %s | %s | %s | %s | %s |", row.Name, row.Unit,
			median(row.Modes[ours]), median(row.Modes[ptHP]), median(row.Modes[goFuse]),
			ratioCell(row.OursOverPtHP), s.ratioVerdict(tag+row.Name+" vs passthrough_hp", row.OursOverPtHP, targetOverPtHP), ratioCell(row.OursOverGoFuse))
		if row.WritebackOverPtHP != nil {
			t.row("| %s (writeback, both) | %s | %s | %s | – | %s | %s | – |", row.Name, row.Unit,
				median(row.Modes[writeback]), median(row.Modes[ptHP]),
				ratioCell(row.WritebackOverPtHP), s.ratioVerdict(tag+row.Name+" (writeback, both) vs passthrough_hp", row.WritebackOverPtHP, targetOverPtHP))
		}
	}
	for _, row := range conc {
		if row.P99UnderWriter == nil {
			continue
		}
		p99 := newTable(s.w, "Mixed: the stat client's p99 (µs, median over samples), idle and under the writer (target for krunbench: ≤ 2x idle)",
			"| mode | idle p99 | under writer p99 | ratio | |").start()
		for _, m := range sortedKeys(row.P99UnderWriter) {
			idle, busy := latencyMedians(row.Modes[m])
			v := ""
			if m == ours {
				p := row.P99UnderWriter[m]
				v = s.judge(fmt.Sprintf("%smixed p99 under writer %.2fx idle (target ≤ %.1fx)", tag, p.Median, targetP99Ratio), p.Median <= targetP99Ratio)
			}
			p99.row("| %s | %.0f | %.0f | %s | %s |", m, idle, busy, ratioCell(row.P99UnderWriter[m]), v)
		}
		s.mixedPhases(row)
	}
}

// mixedPhases prints the mixed row's calls under the writer split at the
// writer's last write() (fusebench's mixed.go), when the run has them:
// medians over samples.
func (s *summary) mixedPhases(row *results.Row) {
	var t *table
	for _, m := range sortedKeys(row.Modes) {
		var wr, fs, share, secs, runq []float64
		for _, x := range row.Modes[m].Samples {
			l := x.Latency
			if l == nil || l.WritePhaseCalls+l.FsyncPhaseCalls == 0 {
				continue
			}
			wr, fs = append(wr, l.WritePhaseP99Us), append(fs, l.FsyncPhaseP99Us)
			share = append(share, 100*float64(l.WritePhaseCalls)/float64(l.WritePhaseCalls+l.FsyncPhaseCalls))
			secs = append(secs, l.WritePhaseSeconds)
			if l.SlowRunqPct != nil {
				runq = append(runq, *l.SlowRunqPct)
			}
		}
		if len(wr) == 0 {
			continue
		}
		if t == nil {
			t = newTable(s.w, "Mixed, by the writer's phase (µs, median over samples; runq: share of the slowest 1% of calls spent waiting for a CPU, with fusebench -mixed-runq)",
				"| mode | write() phase p99 | fsync phase p99 | calls in write() | write() s | slowest 1%: runq |").start()
		}
		runqCell := "–" // not measured (fusebench without -mixed-runq)
		if len(runq) > 0 {
			runqCell = fmt.Sprintf("%.0f%%", hostinfo.Median(runq))
		}
		t.row("| %s | %.0f | %.0f | %.0f%% | %.2f | %s |", m, hostinfo.Median(wr), hostinfo.Median(fs), hostinfo.Median(share), hostinfo.Median(secs), runqCell)
	}
}

// rowsWhere is the rows keep accepts, in their order.
func rowsWhere(rows []*results.Row, keep func(*results.Row) bool) []*results.Row {
	var out []*results.Row
	for _, row := range rows {
		if keep(row) {
			out = append(out, row)
		}
	}
	return out
}

// isConcurrencyRow says whether a row is one of the concurrency table's.
func isConcurrencyRow(row *results.Row) bool { return slices.Contains(concurrencyRows, row.Name) }

func latencyMedians(s *results.Series) (idle, busy float64) {
	if s == nil {
		return 0, 0
	}
	var is, bs []float64
	for _, x := range s.Samples {
		if x.Latency != nil {
			is, bs = append(is, x.Latency.IdleP99Us), append(bs, x.Latency.BusyP99Us)
		}
	}
	return hostinfo.Median(is), hostinfo.Median(bs)
}

func (s *summary) fuseMemory(m *results.Memory) {
	if m == nil {
		return
	}
	t := newTable(s.w, fmt.Sprintf("### Memory: server RSS after looking up %d inodes (/dev/fuse; virtiofsd's row is the guest path's)", m.Files),
		"| mode | RSS after (MiB) | peak (MiB) | fds | files seen | failed | still serves | first error |").start()
	for _, name := range sortedKeys(m.Modes) {
		r := m.Modes[name]
		t.row("| %s | %.1f | %.1f | %d | %d | %d | %v | %s |", name, float64(r.RSSAfterKiB)/1024, float64(r.HWMKiB)/1024,
			r.FDs, r.Seen, r.Failed, r.StillServes, r.FirstError)
	}
}

func (s *summary) rules(rows []*results.Row) {
	have := rowsWhere(rows, func(row *results.Row) bool { return row.Rules100OverheadPct != nil || row.TapOverheadPct != nil })
	if len(have) == 0 {
		return
	}
	t := newTable(s.w, "### The tap and 100 rules (issue 14): within rounds, median [p25, p75]",
		"| row | tap over no-tap (≤5%) | | 100 rules over tap: time | server CPU | µs per unit |")
	for _, row := range have {
		v := "n/a"
		if row.TapOverheadPct != nil {
			v = s.judge(fmt.Sprintf("%s tap overhead %+.1f%% (target ≤ %.0f%%)", row.Name, row.TapOverheadPct.Median, targetTapOverhead), row.TapOverheadPct.Median <= targetTapOverhead)
		}
		t.row("| %s | %s | %s | %s | %s | %s |", row.Name, pctCell(row.TapOverheadPct), v, pctCell(row.Rules100OverheadPct), pctCell(row.Rules100CPUPct), usPerUnit(row.Rules100ExtraUsPerUnit))
	}
	fmt.Fprintln(s.w, "\nIssue 14 asks for the 100-rule cost to be measured and reported (no bound); the 5% bound is the tap's.")
}

func usPerUnit(p *results.Paired) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%+.2f [%+.2f, %+.2f]", p.Median, p.P25, p.P75)
}

func (s *summary) tui(path string) error {
	var r results.TUIFile
	if err := readJSON(path, &r); err != nil {
		return err
	}
	t := newTable(s.w, fmt.Sprintf("## TUI under a traffic flood (%s)", filepath.Base(path)), "| mode | guest s (median) | host s |").start()
	for _, m := range r.Modes {
		t.row("| %s | %.2f | %.2f |", m.Name, m.Median, m.HostMedian)
	}
	if c := r.Fuse; c != nil && c.PassTarget != nil && c.TUIOverheadPct != nil && c.BoundPct != nil {
		fmt.Fprintf(s.w, "\nTUI overhead %+.1f%% (fusebench's stat tap overhead %+.1f%%); against fusebench's 5%% target: %s\n",
			*c.TUIOverheadPct, *c.BoundPct, s.judge(fmt.Sprintf("TUI overhead %+.1f%% (target ≤ 5%%)", *c.TUIOverheadPct), *c.PassTarget))
	}
	return nil
}

func (s *summary) boot(path string) error {
	var r results.Boot
	if err := readJSON(path, &r); err != nil {
		return err
	}
	t := newTable(s.w, fmt.Sprintf("## Boot to exit, in the nested L1 (%s)", filepath.Base(path)), "| engine | exit ms (median) | wall ms | failed runs |").start()
	for _, e := range sortedKeys(r.MedianMs) {
		t.row("| %s | %.0f | %.0f | %d |", e, r.MedianMs[e]["exit"], r.MedianMs[e]["wall"], r.Failed[e])
	}
	if r.ExitRatio > 0 {
		fmt.Fprintf(s.w, "\nkvm/qemu exit ratio %.2f (%s): %s\n", r.ExitRatio, r.Target, s.judge(fmt.Sprintf("boot exit ratio %.2f (target < 1)", r.ExitRatio), r.ExitRatio < 1))
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orNone(label string) string {
	if strings.TrimSpace(label) == "" {
		return "no label"
	}
	return "label: " + label
}
