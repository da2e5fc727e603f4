package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/krunbench/krunbench/bench/guestbench/runnerconfig"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// TestOneDisturbedBootDoesNotDecideTheRatio: four rounds on a machine
// that gets busier round by round (both modes' boots of a round meet the
// same load), krunbench at 0.75x virtiofsd's CPU per request and 0.95x
// its wall time in every round, except that its first boot ran
// disturbed (CPU 1.8x, time 1.5x its round's due), as in session 14's
// judged run. The ratio of the two modes' medians lets that one boot
// decide both rows (CPU 0.875x, a miss of the 0.8x target; wall 1.11x, a
// miss); the median of the per-round ratios gives the 0.75x and 0.95x of
// the three undisturbed rounds, with the disturbed one in its spread. A
// round where virtiofsd's read failed gives no ratio, and request counts
// scale the CPU ratio per 1,000 requests (create: virtiofsd's 35,000
// requests, krunbench's 30,000).
func TestOneDisturbedBootDoesNotDecideTheRatio(t *testing.T) {
	ours := &mode{Name: modeTap, krunbench: true}
	peer := &mode{Name: modeVirtiofsd}
	r := &results{}
	r.Modes = []*mode{ours, peer}
	for _, name := range []string{"stat", "read", "create"} {
		r.Rows = append(r.Rows, &row{Name: name, Modes: map[string]*series{}})
	}
	load := []float64{1.0, 1.1, 1.3, 1.5}
	reqs := map[string][2]int{"stat": {14859, 14859}, "read": {2056, 2056}, "create": {30000, 35000}}
	for rep, f := range load {
		for _, x := range r.Rows {
			peerCPU, peerSecs := 0.45*f, 3.6*f
			cpu := 0.75 * peerCPU * float64(reqs[x.Name][0]) / float64(reqs[x.Name][1])
			secs := 0.95 * peerSecs
			if rep == 0 {
				cpu, secs = 1.8*cpu, 1.5*secs
			}
			r.add(x.Name, modeTap, rep, measure{Units: 1, Seconds: secs, ServerCPU: cpu})
			if x.Name == "read" && rep == 2 {
				r.fail(x.Name, modeVirtiofsd, "EIO")
				continue
			}
			r.add(x.Name, modeVirtiofsd, rep, measure{Units: 1, Seconds: peerSecs, ServerCPU: peerCPU})
		}
	}
	for _, x := range r.Rows {
		r.setRequests(x.Name, modeTap, opCounts{"LOOKUP": reqs[x.Name][0]})
		r.setRequests(x.Name, modeVirtiofsd, opCounts{"LOOKUP": reqs[x.Name][1]})
	}
	r.finish(time.Second)

	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for _, x := range r.Rows {
		if got := x.CPURatio[modeTap]; !near(got, 0.75) {
			t.Errorf("%s: judged CPU per 1k ratio %.4f, want 0.75 (ratio of medians %.4f)", x.Name, got, x.CPURatioOfMedians[modeTap])
		}
		if got := x.WallRatio[modeTap]; !near(got, 0.95) {
			t.Errorf("%s: judged wall ratio %.4f, want 0.95 (ratio of medians %.4f)", x.Name, got, x.WallRatioOfMedians[modeTap])
		}
		if p := x.CPURatioRounds[modeTap]; p == nil || !near(p.Min, 0.75) || !near(p.Max, 1.35) || !near(p.Ratios[0], 1.35) {
			t.Errorf("%s: CPU per-round ratios %+v, want min 0.75, max 1.35 (the disturbed first round)", x.Name, p)
		}
		if p := x.WallRatioRounds[modeTap]; p == nil || !near(p.Max, 1.425) {
			t.Errorf("%s: wall per-round ratios %+v, want max 1.425", x.Name, p)
		}
		wantRounds := []int{1, 2, 3, 4}
		if x.Name == "read" {
			wantRounds = []int{1, 2, 4}
		}
		for _, p := range []*schema.RoundRatios{x.CPURatioRounds[modeTap], x.WallRatioRounds[modeTap]} {
			if p == nil || !slices.Equal(p.Rounds, wantRounds) || len(p.Ratios) != len(wantRounds) {
				t.Errorf("%s: ratios over rounds %+v, want rounds %v", x.Name, p, wantRounds)
			}
		}
		if x.Name != "read" {
			// The estimator judged before, kept beside: the disturbed
			// boot moved krunbench's median and decided the row.
			if got := x.CPURatioOfMedians[modeTap]; got <= targetCPU {
				t.Errorf("%s: CPU ratio of medians %.4f: the fixture does not show the disturbed answer", x.Name, got)
			}
			if got := x.WallRatioOfMedians[modeTap]; got <= targetWall {
				t.Errorf("%s: wall ratio of medians %.4f: the fixture does not show the disturbed answer", x.Name, got)
			}
		}
		key := modeTap + " " + x.Name
		if ok, judged := r.Targets["cpu_per_1k_le_0.8x_virtiofsd"].Rows[key]; !judged || !ok {
			t.Errorf("%s CPU target: judged %v, met %v; want judged, met", x.Name, judged, ok)
		}
		if ok, judged := r.Targets["wall_le_virtiofsd"].Rows[key]; !judged || !ok {
			t.Errorf("%s wall target: judged %v, met %v; want judged, met", x.Name, judged, ok)
		}
	}
	// The whole workload's CPU is paired too: per 1k times 30,000/35,000.
	if got := r.Rows[2].TotalCPURatio[modeTap]; !near(got, 0.75*30000/35000) {
		t.Errorf("create: whole-workload CPU ratio %.4f, want %.4f", got, 0.75*30000/35000)
	}
}

// TestLargeRunsLeavesMemoryLargeOutAfterItsRounds (a unit test: nothing
// boots): with -runs 4 -large-runs 2 the boots of rounds 1 and 2 get the
// initramfs whose runner config lists every workload, those of rounds 3
// and 4 one without memory-large, and the host expects the same lists;
// -large-runs 0 keeps memory-large in every round.
func TestLargeRunsLeavesMemoryLargeOutAfterItsRounds(t *testing.T) {
	cfg := &config{workloads: allWorkloads, runs: 4, largeRuns: 2, size: 1 << 20, dirs: 1, filesPerDir: 1, creates: 1, memoryFiles: 1, largeFiles: 2}
	m := &mode{Name: modeTap}
	if err := m.writeInitrds(cfg, t.TempDir(), []byte("runner")); err != nil {
		t.Fatal(err)
	}
	for rep, wantLarge := range []bool{true, true, false, false} {
		host := cfg.roundWorkloads(rep)
		b, err := os.ReadFile(m.timedInitrd(cfg, rep))
		if err != nil {
			t.Fatal(err)
		}
		guest, err := runnerconfig.Decode(cpioFile(t, b, runnerconfig.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(host, guest.Workloads) {
			t.Errorf("round %d: the host expects %v, the guest runs %v", rep+1, host, guest.Workloads)
		}
		if got := slices.Contains(guest.Workloads, "memory-large"); got != wantLarge {
			t.Errorf("round %d: memory-large in the boot %v, want %v (%s)", rep+1, got, wantLarge, filepath.Base(m.timedInitrd(cfg, rep)))
		}
		if len(guest.Workloads) != len(allWorkloads)-map[bool]int{true: 0, false: 1}[wantLarge] {
			t.Errorf("round %d: workloads %v", rep+1, guest.Workloads)
		}
	}
	cfg.largeRuns = 0
	if got := cfg.roundWorkloads(3); !slices.Equal(got, allWorkloads) || m.timedInitrd(cfg, 3) != m.initrd {
		t.Errorf("-large-runs 0, round 4: %v from %s, want every workload", got, m.timedInitrd(cfg, 3))
	}
}

// cpioFile is the data of the file name in a newc archive.
func cpioFile(t *testing.T, b []byte, name string) []byte {
	t.Helper()
	hex := func(off, i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("cpio header at %d: %v", off, err)
		}
		return int(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; off+110 <= len(b); {
		size, nameLen := hex(off, 6), hex(off, 11)
		entry := string(b[off+110 : off+110+nameLen-1])
		data := align(off + 110 + nameLen)
		if entry == name {
			return b[data : data+size]
		}
		if entry == "TRAILER!!!" {
			break
		}
		off = align(data + size)
	}
	t.Fatalf("%s not in the archive", name)
	return nil
}
