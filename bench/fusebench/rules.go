package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// The rules rows (issue 14, item 4). Mode rules100 is krunbench serve
// with 100 rules of the init debugger that never fire on this share: half
// break rules on LOOKUP under /dirN/* (so every LOOKUP resolves its path
// and tries 50 globs), half fault rules on OPEN and READ of
// /lib/libN.so* (the set virtiofs/rules' BenchmarkRules uses in-process).
// Against tap (c), within rounds, it gives what 100 rules cost a user;
// no-tap (b) against tap gives the tap's cost, which must stay within
// targetOverheadPct when no rule is set.

// hundredRules is the rule file rules100 serves with.
func hundredRules() string {
	var b strings.Builder
	b.WriteString("# fusebench: 100 rules that never fire on the benchmark's share\n")
	for i := range 50 {
		fmt.Fprintf(&b, "break LOOKUP /dir%d/*\n", i)
		fmt.Fprintf(&b, "fault OPEN,READ /lib/lib%d.so* EIO\n", i)
	}
	return b.String()
}

func writeRulesFile(path string) error {
	return os.WriteFile(path, []byte(hundredRules()), 0o644)
}

// overheadRows are the rows default settings run no-tap (b) and rules100
// on when -modes is not given: the request-heavy ones, cold and warm (the
// large sequential rows spend their time moving data, not in per-request
// work).
var overheadRows = []string{"stat", "create", "stat-warm", "create-warm"}

// limitedModes are the modes default settings run on overheadRows only.
var limitedModes = []string{modeNoTap, modeRules}

// runsRow says whether mode runs workload row in this run.
func (cfg *config) runsRow(mode, row string) bool {
	if mode == modeWriteback {
		return runsWriteback(row)
	}
	if !cfg.limitModes || !slices.Contains(limitedModes, mode) {
		return true
	}
	return slices.Contains(overheadRows, row)
}

// extraUsPerUnit is how many microseconds more a took than b per unit of
// work (file stat-ed, create+unlink triple) of the row.
func extraUsPerUnit(a, b measure) (float64, bool) {
	units := b.Value * b.Seconds
	return 1e6 * (a.Seconds - b.Seconds) / units, units > 0
}
