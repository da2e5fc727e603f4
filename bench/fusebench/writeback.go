package main

import (
	"fmt"
	"io"
	"slices"
)

// The writeback rows. passthrough_hp runs, as shipped, with the kernel's
// writeback cache, so on the write rows its lead may come from the cache
// mode rather than from its server (issue 15 asks to say so). krunbench
// offers that mode as `serve --writeback` (off by default: it is only safe
// for a directory nothing else changes meanwhile), and the "writeback"
// mode runs it on the write rows and the mixed row (its writer is one),
// so that "write (writeback, both)" and "mixed (writeback, both)" compare
// the two servers under the same cache mode; on the mixed row the stat
// client's p99 under the writer is then shown for both cache modes.

// modeWriteback is krunbench serve --writeback (tap on).
const modeWriteback = "writeback"

// writebackRows are the rows the writeback mode runs.
var writebackRows = []string{"write", "write-warm", rowMixed}

// runsWriteback says whether the writeback mode runs row: the rows with a
// writer only, whatever -modes says (reads and metadata rows do not go through
// the writeback cache).
func runsWriteback(row string) bool { return slices.Contains(writebackRows, row) }

// finishWriteback computes the row's writeback ratio: krunbench with
// --writeback over passthrough_hp (both with the kernel's writeback
// cache), within rounds.
func (x *row) finishWriteback() {
	x.WritebackOverPtHP = pairOf(x.Modes[modeWriteback], x.Modes[modePtHP], speedRatio)
}

// printWriteback prints the "write (writeback, both)" rows, if any ran.
func (r *results) printWriteback(w io.Writer) {
	for _, x := range r.Rows {
		if x.WritebackOverPtHP == nil {
			continue
		}
		verdict := map[bool]string{true: "PASS", false: "MISS"}[x.WritebackOverPtHP.Median >= targetOverPtHP]
		fmt.Fprintf(w, "%s (writeback, both): krunbench --writeback %s %s, passthrough_hp %s; ours/pt_hp %s %s\n",
			x.Name, fmtValue(x.Unit, x.Modes[modeWriteback].Median), x.Unit, fmtValue(x.Unit, x.Modes[modePtHP].Median), fmtRatio(x.WritebackOverPtHP), verdict)
	}
}
