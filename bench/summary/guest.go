package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/krunbench/krunbench/bench/internal/results"
)

// guestSeries is one guest workload in one mode (guestbench writes the
// same type).
type guestSeries = results.GuestSeries

// guest summarises a guestbench file: the judged table (per-round ratios
// where the file has them, else its ratios of medians), krunbench as
// shipped, requests by opcode, the memory rows and the 100k walk.
func (s *summary) guest(path string) error {
	var r results.GuestFile
	if err := readJSON(path, &r); err != nil {
		return err
	}
	fmt.Fprintf(s.w, "\n## Guest path: QEMU TCG guest, krunbench `serve --socket` vs virtiofsd (%s)\n\n", filepath.Base(path))
	large := ""
	if c := r.Config; c.LargeRuns > 0 && c.LargeRuns < c.Runs {
		large = fmt.Sprintf(" (memory-large in the first %d)", c.LargeRuns)
	}
	fmt.Fprintf(s.w, "%s; %d runs%s; %s; krunbench %s; load at start %s; %.0f s.\n",
		orNone(r.Label), r.Config.Runs, large, r.Machine.Date, r.Machine.Krunbench, r.Machine.LoadStart, r.Elapsed)
	if len(r.Rows) > 0 && r.Rows[0].Modes[guestPeer] == nil {
		return errors.New("no virtiofsd mode: an old (virtio-9p era) guest.json? rerun guestbench")
	}
	if guestPaired(&r) {
		s.guestJudged(&r)
	} else {
		s.guestJudgedOfMedians(&r)
	}
	s.guestAsShipped(&r)
	s.guestOpcodes(&r)
	s.guestMemory(&r)
	s.guestLargeWalk(&r)
	return nil
}

// guestPaired says whether the file holds ratios taken within rounds
// (guestbench since session 15); older files hold ratios of medians.
func guestPaired(r *results.GuestFile) bool {
	return slices.ContainsFunc(r.Rows, func(row *results.GuestRow) bool { return len(row.WallRatioRounds) > 0 })
}

// guestJudged is the judged guest table: per workload, krunbench (with
// virtiofsd's offer) against virtiofsd, CPU per 1,000 requests and wall
// time judged on the median over rounds of each round's ratio, with its
// spread, and the ratio of the medians beside it.
func (s *summary) guestJudged(r *results.GuestFile) {
	t := newTable(s.w, fmt.Sprintf("krunbench: `serve --readdirplus auto`, the directory listing offer virtiofsd makes, so both get the same requests; judged on the median of per-round ratios over %d rounds [min–max over the rounds] (each round's krunbench boot against the virtiofsd boot of the same round); \"of medians\": the ratio of the two modes' medians, shown, not judged.", r.Config.Runs),
		"| workload | krunbench CPU ms/1k req | virtiofsd CPU ms/1k req | CPU/1k ratio (≤0.8) | | of medians | total CPU ratio | krunbench s | virtiofsd s | wall ratio (≤1.0) | | of medians |").start()
	for _, row := range r.Rows {
		a, b := row.Modes[guestOurs], row.Modes[guestPeer]
		if a == nil || b == nil || isMemoryRow(row.Name) {
			continue // the memory walks are judged on RSS only (as guestbench does)
		}
		cpu, wall := "n/a", "n/a"
		if p := row.CPURatioRounds[guestOurs]; p != nil {
			cpu = s.judge(fmt.Sprintf("guest %s CPU per 1k requests %.2fx virtiofsd (median of %d per-round ratios; target ≤ %.1fx)", row.Name, p.Median, len(p.Ratios), targetGuestCPU), p.Median <= targetGuestCPU)
		}
		if p := row.WallRatioRounds[guestOurs]; p != nil {
			wall = s.judge(fmt.Sprintf("guest %s wall %.2fx virtiofsd (median of %d per-round ratios; target ≤ %.1fx)", row.Name, p.Median, len(p.Ratios), targetGuestWall), p.Median <= targetGuestWall)
		}
		t.row("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", row.Name,
			perK(a), perK(b), roundsCell(row.CPURatioRounds[guestOurs], r.Config.Runs), cpu, ratio(row.CPURatioOfMedians, guestOurs), ratio(row.TotalCPURatio, guestOurs),
			secs(a), secs(b), roundsCell(row.WallRatioRounds[guestOurs], r.Config.Runs), wall, ratio(row.WallRatioOfMedians, guestOurs))
	}
}

// guestJudgedOfMedians is the judged guest table of a file written
// before guestbench took its ratios within rounds: it holds only the
// ratios of the two modes' medians, and those are judged, as they were.
func (s *summary) guestJudgedOfMedians(r *results.GuestFile) {
	t := newTable(s.w, fmt.Sprintf("krunbench: `serve --readdirplus auto`, the directory listing offer virtiofsd makes, so both get the same requests; judged. This file has no per-round ratios (written before guestbench took them): the ratios are of the two modes' medians over %d boots each.", r.Config.Runs),
		"| workload | krunbench CPU ms/1k req | virtiofsd CPU ms/1k req | ratio of medians (≤0.8) | | total CPU ratio | krunbench s | virtiofsd s | wall ratio of medians (≤1.0) | |").start()
	for _, row := range r.Rows {
		a, b := row.Modes[guestOurs], row.Modes[guestPeer]
		if a == nil || b == nil || isMemoryRow(row.Name) {
			continue
		}
		cpu, wall := "n/a", "n/a"
		if v, ok := row.CPURatio[guestOurs]; ok {
			cpu = s.judge(fmt.Sprintf("guest %s CPU per 1k requests %.2fx virtiofsd (ratio of medians; target ≤ %.1fx)", row.Name, v, targetGuestCPU), v <= targetGuestCPU)
		}
		if v, ok := row.WallRatio[guestOurs]; ok {
			wall = s.judge(fmt.Sprintf("guest %s wall %.2fx virtiofsd (ratio of medians; target ≤ %.1fx)", row.Name, v, targetGuestWall), v <= targetGuestWall)
		}
		t.row("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", row.Name,
			perK(a), perK(b), ratio(row.CPURatio, guestOurs), cpu, ratio(row.TotalCPURatio, guestOurs),
			secs(a), secs(b), ratio(row.WallRatio, guestOurs), wall)
	}
}

// roundsCell prints a ratio taken within rounds: median [min–max], and
// how many rounds gave it where fewer than the run's (a failed boot).
func roundsCell(p *results.RoundRatios, runs int) string {
	if p == nil {
		return "–"
	}
	cell := fmt.Sprintf("%.2fx [%.2f–%.2f]", p.Median, p.Min, p.Max)
	if len(p.Ratios) < runs {
		cell += fmt.Sprintf(" (%d rounds)", len(p.Ratios))
	}
	return cell
}

// isMemoryRow says whether a guest workload is judged on RSS only.
func isMemoryRow(name string) bool { return name == "memory" || name == "memory-large" }

// guestAsShipped shows krunbench with its default offer (--readdirplus
// always) against virtiofsd: other requests for the same walk, so shown,
// not judged.
func (s *summary) guestAsShipped(r *results.GuestFile) {
	t := newTable(s.w, "krunbench as shipped (`--readdirplus always`: READDIRPLUS for every chunk, no LOOKUP per entry), against the same virtiofsd; other requests, so not judged (ratios taken as in the table above):",
		"| workload | krunbench CPU ms/1k req | ratio | total CPU ratio | krunbench s | wall ratio |")
	for _, row := range r.Rows {
		a, b := row.Modes[guestAsShipped], row.Modes[guestPeer]
		if a == nil || b == nil || isMemoryRow(row.Name) {
			continue
		}
		t.row("| %s | %s | %s | %s | %s | %s |", row.Name, perK(a), ratio(row.CPURatio, guestAsShipped),
			ratio(row.TotalCPURatio, guestAsShipped), secs(a), ratio(row.WallRatio, guestAsShipped))
	}
}

// guestOpcodes lists each mode's requests by opcode (the counting boot).
func (s *summary) guestOpcodes(r *results.GuestFile) {
	t := newTable(s.w, "Requests by opcode (each backend's own record, counting boot):", "| workload | mode | requests | by opcode |")
	for _, row := range r.Rows {
		for _, mode := range []string{guestOurs, guestPeer, guestAsShipped} {
			m := row.Modes[mode]
			if m == nil || len(m.RequestsByOp) == 0 {
				continue
			}
			t.row("| %s | %s | %d | %s |", row.Name, mode, m.Requests, opcodes(m.RequestsByOp))
		}
	}
}

// opcodes lists counts by opcode, the most frequent first.
func opcodes(c map[string]int) string {
	ops := make([]string, 0, len(c))
	for op := range c {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		if c[ops[i]] != c[ops[j]] {
			return c[ops[i]] > c[ops[j]]
		}
		return ops[i] < ops[j]
	})
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %d", op, c[op])
	}
	return strings.Join(parts, ", ")
}

// guestMemory shows the backends' RSS after the memory walks, whole and
// split: anon is the backend's own, shmem guest RAM it touched.
func (s *summary) guestMemory(r *results.GuestFile) {
	for _, row := range r.Rows {
		if row.Name != "memory" {
			continue
		}
		a, b := row.Modes[guestOurs], row.Modes[guestPeer]
		fmt.Fprintf(s.w, "\nMemory: backend RSS after a find over %d files in the guest: krunbench %s, virtiofsd %s", r.Config.MemoryFiles, rss(a), rss(b))
		if v, ok := row.RSSRatio[guestOurs]; ok {
			fmt.Fprintf(s.w, ", ratio %.2fx: %s\n", v, s.judge(fmt.Sprintf("guest RSS at %d inodes %.2fx virtiofsd (target ≤ %.1fx)", r.Config.MemoryFiles, v, targetGuestRSS), v <= targetGuestRSS))
		} else {
			fmt.Fprintln(s.w, ", no ratio (see failures)")
		}
		for _, m := range []*guestSeries{a, b} {
			if m != nil && len(m.Failures) > 0 {
				fmt.Fprintf(s.w, "- failed: %s\n", m.Failures[0])
			}
		}
	}
	t := newTable(s.w, "RSS split (MiB, /proc/PID/status): anon is the backend's own memory, shmem the guest RAM pages it touched through its mapping (the guest's, counted in QEMU too).",
		"| workload | mode | RSS | anon | file | shmem |")
	for _, row := range r.Rows {
		if !isMemoryRow(row.Name) {
			continue
		}
		for _, mode := range []string{guestOurs, guestPeer, guestAsShipped} {
			m := row.Modes[mode]
			if m == nil || m.MedianRSSKiB == 0 {
				continue
			}
			files := r.Config.MemoryFiles
			if row.Name == "memory-large" {
				files = r.Config.LargeFiles
			}
			t.row("| %s (%d files) | %s | %.1f | %.1f | %.1f | %.1f |", row.Name, files, mode,
				m.MedianRSSKiB/1024, m.MedianAnonKiB/1024, m.MedianFileKiB/1024, m.MedianShmemKiB/1024)
		}
	}
}

// guestLargeWalk shows what each backend did on the memory-large walk,
// which goes on past failed lookups (its first sample): a backend that
// keeps a descriptor per inode (virtiofsd) fails past its RLIMIT_NOFILE,
// the counterpart of fusebench's memory row for passthrough_hp.
func (s *summary) guestLargeWalk(r *results.GuestFile) {
	for _, row := range r.Rows {
		if row.Name != "memory-large" {
			continue
		}
		t := newTable(s.w, fmt.Sprintf("The %d-file walk, going on past failed lookups (first sample; no RSS ratio is taken against a backend whose lookups failed):", r.Config.LargeFiles),
			"| mode | RSS (MiB) | files seen | never reached | failed lookups | fds after | still serves | first error |")
		for _, mode := range []string{guestOurs, guestPeer, guestAsShipped} {
			m := row.Modes[mode]
			if m == nil || len(m.Samples) == 0 || m.Samples[0].ServerFDs == 0 {
				continue // not measured, or written before the walk went on past errors
			}
			x := m.Samples[0]
			serves := "yes"
			if x.AfterError != "" {
				serves = "no: " + x.AfterError
			}
			failed := fmt.Sprint(x.FilesFailed)
			if x.FailedByErrno != "" {
				failed += " (" + x.FailedByErrno + ")"
			}
			// A directory that cannot be opened is one failure, and none
			// of its files is looked up: what the walk never reached is
			// the tree less what it saw.
			unreached := max(r.Config.LargeFiles-int(x.Units), 0)
			t.row("| %s | %.1f | %.0f | %d | %s | %d | %s | %s |", mode, float64(x.ServerRSSKiB)/1024, x.Units, unreached, failed, x.ServerFDs, serves, x.FirstError)
		}
	}
}

func perK(g *guestSeries) string {
	if g.CPUPer1k == 0 {
		return fmt.Sprintf("– (%d req)", g.Requests)
	}
	return fmt.Sprintf("%.1f (%d req)", 1000*g.CPUPer1k, g.Requests)
}

func secs(g *guestSeries) string { return fmt.Sprintf("%.2f", g.MedianSeconds) }

func rss(g *guestSeries) string {
	if g == nil || g.MedianRSSKiB == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", g.MedianRSSKiB/1024)
}

func ratio(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.2fx", v)
	}
	return "–"
}
