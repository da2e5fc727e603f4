package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/rules"
)

// The rules100 mode must serve with rules the product accepts, and none
// may name a path the benchmark's share has (a fault would fail the row, a
// break would hold it forever).
func TestHundredRulesParseAndStayOffTheShare(t *testing.T) {
	rs, err := rules.ParseFile("rules100", strings.NewReader(hundredRules()))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 100 {
		t.Fatalf("%d rules, want 100", len(rs))
	}
	share := []string{readName, writeName, treeName, createName, parDir, probeDir, manyName, mixedName}
	for _, r := range rs {
		top := strings.SplitN(strings.TrimPrefix(r.Glob, "/"), "/", 2)[0]
		for _, name := range share {
			if ok, _ := filepath.Match(top, name); ok || top == "" {
				t.Errorf("rule %q can match the share's %s", r, name)
			}
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := range 100 {
		ds = append(ds, time.Duration(100-i)*time.Microsecond) // unsorted on purpose
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := pctUs(ds, c.p); got != c.want {
			t.Errorf("p%v = %v us, want %v", c.p, got, c.want)
		}
	}
}

// The concurrency rows on a plain directory (the host mode): fio really
// runs, its JSON is read, every client is counted.
func TestConcurrencyRowsOnTheHost(t *testing.T) {
	dir := t.TempDir()
	cfg := &config{clients: 3, concFiles: 20, concCreates: 10, concReads: 50, concFileSize: 1 << 20,
		mixedSize: 8 << 20, mixedProbes: 100, mixedRunq: true}
	if err := prepareConcurrency(cfg, dir); err != nil {
		t.Fatal(err)
	}
	fio, err := exec.LookPath("fio")
	if err != nil {
		t.Skip("SKIP: fio not installed (apt-get install fio); par-randread untested")
	}
	out, err := runFio(fio, cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if out.Units != 150 || out.Seconds <= 0 || out.Latency == nil || out.Latency.ClientsP99 <= 0 {
		t.Errorf("fio outcome %+v %+v, want 150 reads, a runtime and a p99", out, out.Latency)
	}
	for _, w := range concWorkloads(cfg) {
		if w.prepare != nil {
			if err := w.prepare(dir, dir); err != nil {
				t.Fatal(err)
			}
		}
		var units float64
		switch {
		case w.Name == rowParRead:
			continue
		case w.detail != nil:
			o, err := w.detail(dir, nil)
			if err != nil {
				t.Fatalf("%s: %v", w.Name, err)
			}
			units = o.Units
			if l := o.Latency; l == nil || l.IdleCalls != 100 || l.BusyCalls == 0 || l.BusyP99Us < l.BusyP50Us {
				t.Errorf("%s: latency %+v", w.Name, l)
			}
			if l := o.Latency; w.Name == rowMixed && (l.WritePhaseCalls+l.FsyncPhaseCalls != l.BusyCalls || l.WritePhaseSeconds <= 0 || (l.SlowRunqPct != nil && (*l.SlowRunqPct < 0 || *l.SlowRunqPct > 100))) {
				t.Errorf("%s: phases %+v: want the calls split between the two phases, a write() phase and a runqueue share", w.Name, l)
			}
		default:
			if units, err = w.run(dir, nil); err != nil {
				t.Fatalf("%s: %v", w.Name, err)
			}
		}
		want := map[string]float64{rowParStat: 60, rowParCreate: 30, rowMixed: 8 * 1.048576}[w.Name]
		if units != want {
			t.Errorf("%s: %v units, want %v", w.Name, units, want)
		}
		if w.after != nil {
			if err := w.after(dir, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestLimitedModesRunOnTheOverheadRowsOnly(t *testing.T) {
	cfg := &config{limitModes: true}
	if cfg.runsRow(modeRules, "write") || !cfg.runsRow(modeRules, "stat") || !cfg.runsRow(modeNoTap, "create-warm") || !cfg.runsRow(modeTap, "write") {
		t.Error("default settings: no-tap and rules100 run on overheadRows only, other modes everywhere")
	}
	if cfg.limitModes = false; !cfg.runsRow(modeRules, "write") {
		t.Error("with -modes given, every mode runs every row")
	}
}

func TestWritebackModeRunsTheWriterRowsOnly(t *testing.T) {
	for _, limit := range []bool{true, false} {
		cfg := &config{limitModes: limit}
		if !cfg.runsRow(modeWriteback, "write") || !cfg.runsRow(modeWriteback, "write-warm") || !cfg.runsRow(modeWriteback, rowMixed) ||
			cfg.runsRow(modeWriteback, "read") || cfg.runsRow(modeWriteback, "stat-warm") || cfg.runsRow(modeWriteback, rowParStat) {
			t.Errorf("limitModes %v: the writeback mode must run write, write-warm and mixed and nothing else", limit)
		}
	}
}
