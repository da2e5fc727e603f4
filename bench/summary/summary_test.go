package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/bench/internal/results"
)

// fuseFixture is a fusebench file cut down to what summary reads: one
// row that meets both /dev/fuse targets, one that misses both, the mixed
// row over its p99 bound, a rules100 row, the write row's krunbench
// --writeback ratio (met) and the mixed row's (missed, in the concurrency
// table, its p99 shown and not judged).
const fuseFixture = `{"settings":"default","config":{"runs":2},"workloads":[
 {"name":"stat","unit":"files/s","modes":{"tap":{"median":30000}},
  "ours_over_gofuse":{"median":1.25,"p25":1.2,"p75":1.3,"rounds":2},
  "ours_over_passthrough_hp":{"median":1.01,"p25":1,"p75":1.1,"rounds":2},
  "tap_overhead_pct":{"median":2,"p25":1,"p75":3,"rounds":2},
  "rules100_overhead_pct":{"median":4.5,"p25":3,"p75":6,"rounds":2}},
 {"name":"write","unit":"MB/s","modes":{"tap":{"median":400},"writeback":{"median":900},"passthrough_hp":{"median":850}},
  "ours_over_gofuse":{"median":1.19,"p25":1,"p75":1.3,"rounds":2},
  "writeback_over_passthrough_hp":{"median":1.06,"p25":1,"p75":1.1,"rounds":2},
  "ours_over_passthrough_hp":{"median":0.9,"p25":0.8,"p75":1,"rounds":2}},
 {"name":"mixed","unit":"MB/s","modes":{"tap":{"median":300,"samples":[{"latency":{"idle_p99_us":100,"under_writer_p99_us":250}}]},
   "writeback":{"median":700,"samples":[{"latency":{"idle_p99_us":100,"under_writer_p99_us":150}}]}},
  "ours_over_passthrough_hp":{"median":1.0,"p25":1,"p75":1,"rounds":2},
  "writeback_over_passthrough_hp":{"median":0.95,"p25":0.9,"p75":1,"rounds":2},
  "p99_under_writer_over_idle":{"tap":{"median":2.5,"p25":2,"p75":3,"rounds":2},"writeback":{"median":1.5,"p25":1.5,"p75":1.5,"rounds":2}}}],
 "memory":{"files":100000,"modes":{"tap":{"rss_after_kib":20480,"files_seen":100000,"still_serves":true}}}}`

const guestFixture = `{"config":{"runs":2,"memory_files":15000,"memory_large_files":100000},"workloads":[
 {"name":"stat","modes":{"virtiofs-tap":{"median_seconds":1,"requests":100,"server_cpu_s_per_1k_requests":0.5,"requests_by_opcode":{"LOOKUP":90,"READDIR":10}},
   "virtiofsd":{"median_seconds":2,"requests":2000,"server_cpu_s_per_1k_requests":0.05},
   "virtiofs-always":{"median_seconds":0.5,"requests":10,"server_cpu_s_per_1k_requests":2,"requests_by_opcode":{"READDIRPLUS":10}}},
  "cpu_per_1k_over_virtiofsd":{"virtiofs-tap":10,"virtiofs-always":40},"seconds_over_virtiofsd":{"virtiofs-tap":0.5,"virtiofs-always":0.25}},
 {"name":"memory","modes":{"virtiofs-tap":{"median_server_rss_kib":10240,"median_server_rss_anon_kib":2048,"median_server_rss_file_kib":1024,"median_server_rss_shmem_kib":7168},"virtiofsd":{"failures":["EMFILE"]}}},
 {"name":"memory-large","modes":{"virtiofs-tap":{"median_server_rss_kib":20480,"median_server_rss_anon_kib":4096,"median_server_rss_file_kib":1024,"median_server_rss_shmem_kib":15360,
   "samples":[{"units":100000,"server_rss_kib":20480,"server_fds":40}]},
   "virtiofsd":{"median_server_rss_kib":9216,"samples":[{"units":19000,"server_rss_kib":9216,"files_failed":81000,"failed_by_errno":"EMFILE:80999,ENFILE:1","first_error":"lstat /mnt/large/d019/f00000: too many open files","server_fds":20000,"after_error":"open /mnt: too many open files"}]}}}]}`

func run(t *testing.T, files map[string]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	s := &summary{w: &out}
	var errs []string
	for _, st := range []struct {
		name string
		fn   func(string) error
	}{{"fuse.json", s.fuse}, {"guest.json", s.guest}} {
		if err := st.fn(filepath.Join(dir, st.name)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	s.verdicts()
	return out.String(), errs
}

func TestVerdictsFollowTheTargets(t *testing.T) {
	out, errs := run(t, map[string]string{"fuse.json": fuseFixture, "guest.json": guestFixture})
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	for _, want := range []string{
		"| stat | files/s | 30000 (±0%) | – | – | 1.25x [1.20–1.30] | met | 1.01x [1.00–1.10] | met |",
		"missed: default write vs go-fuse 1.19x (target ≥ 1.2x)",
		"missed: default write vs passthrough_hp 0.90x (target ≥ 1.0x)",
		"missed: default mixed p99 under writer 2.50x idle (target ≤ 2.0x)",
		"| tap | 100 | 250 | 2.50x [2.00–3.00] | **missed** |",
		"| stat | +2.0% [+1.0, +3.0] | met | +4.5% [+3.0, +6.0] |",
		"| tap | 20.0 |",
		"missed: guest stat CPU per 1k requests 10.00x virtiofsd (ratio of medians; target ≤ 0.8x)",
		"This file has no per-round ratios (written before guestbench took them): the ratios are of the two modes' medians over 2 boots each.",
		"| stat | 500.0 (100 req) | 50.0 (2000 req) | 10.00x | **missed** | – | 1.00 | 2.00 | 0.50x | met |",
		"krunbench 10.0 MiB, virtiofsd –, no ratio (see failures)",
		"| stat | 2000.0 (10 req) | 40.00x | – | 0.50 | 0.25x |",
		"| stat | virtiofs-tap | 100 | LOOKUP 90, READDIR 10 |",
		"| stat | virtiofs-always | 10 | READDIRPLUS 10 |",
		"| memory (15000 files) | virtiofs-tap | 10.0 | 2.0 | 1.0 | 7.0 |",
		"| memory-large (100000 files) | virtiofs-tap | 20.0 | 4.0 | 1.0 | 15.0 |",
		"- failed: EMFILE",
		"| virtiofs-tap | 20.0 | 100000 | 0 | 0 | 40 | yes |  |",
		"| virtiofsd | 9.0 | 19000 | 81000 | 81000 (EMFILE:80999,ENFILE:1) | 20000 | no: open /mnt: too many open files | lstat /mnt/large/d019/f00000: too many open files |",
		"| write (writeback, both) | MB/s | 900 (±0%) | – | 850 (±0%) | – | | 1.06x [1.00–1.10] | met |",
		"| mixed (writeback, both) | MB/s | 700 (±0%) | – | – | 0.95x [0.90–1.00] | **missed** | – |",
		"| writeback | 100 | 150 | 1.50x [1.50–1.50] |  |",
		"6 targets met, 5 missed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
}

// guestPairedFixture is a guestbench file with ratios taken within
// rounds (4 rounds, memory-large in the first 2): the judged ratios are
// the per-round medians, which meet the targets where the ratios of
// medians (one disturbed boot in round 1) miss them; read's wall ratio
// is over 3 rounds (a failed boot), create's CPU misses.
const guestPairedFixture = `{"config":{"runs":4,"memory_large_runs":2,"ratios":"within rounds"},"workloads":[
 {"name":"stat","modes":{"virtiofs-tap":{"median_seconds":4.79,"requests":100,"server_cpu_s_per_1k_requests":0.5},
   "virtiofsd":{"median_seconds":4.32,"requests":100,"server_cpu_s_per_1k_requests":0.57},
   "virtiofs-always":{"median_seconds":2.5,"requests":10,"server_cpu_s_per_1k_requests":2}},
  "cpu_per_1k_over_virtiofsd":{"virtiofs-tap":0.75,"virtiofs-always":3.1},
  "cpu_per_1k_over_virtiofsd_by_round":{"virtiofs-tap":{"median":0.75,"min":0.75,"max":1.35,"rounds":[1,2,3,4],"ratios":[1.35,0.75,0.75,0.75]},
   "virtiofs-always":{"median":3.1,"min":3,"max":3.2,"rounds":[1,2,3,4],"ratios":[3,3.1,3.1,3.2]}},
  "cpu_ratio_of_medians":{"virtiofs-tap":0.875,"virtiofs-always":3.5},
  "cpu_over_virtiofsd":{"virtiofs-tap":0.75,"virtiofs-always":0.31},
  "seconds_over_virtiofsd":{"virtiofs-tap":0.95,"virtiofs-always":0.6},
  "seconds_over_virtiofsd_by_round":{"virtiofs-tap":{"median":0.95,"min":0.95,"max":1.425,"rounds":[1,2,3,4],"ratios":[1.425,0.95,0.95,0.95]}},
  "wall_ratio_of_medians":{"virtiofs-tap":1.108,"virtiofs-always":0.58}},
 {"name":"read","modes":{"virtiofs-tap":{"median_seconds":3.3,"requests":2056,"server_cpu_s_per_1k_requests":0.1},"virtiofsd":{"median_seconds":3.4,"requests":2056,"server_cpu_s_per_1k_requests":0.13}},
  "cpu_per_1k_over_virtiofsd":{"virtiofs-tap":0.77},
  "cpu_per_1k_over_virtiofsd_by_round":{"virtiofs-tap":{"median":0.77,"min":0.7,"max":0.9,"rounds":[1,2,4],"ratios":[0.7,0.77,0.9]}},
  "seconds_over_virtiofsd":{"virtiofs-tap":0.97},
  "seconds_over_virtiofsd_by_round":{"virtiofs-tap":{"median":0.97,"min":0.9,"max":1.1,"rounds":[1,2,4],"ratios":[0.9,0.97,1.1]}}},
 {"name":"create","modes":{"virtiofs-tap":{"median_seconds":5,"requests":30000,"server_cpu_s_per_1k_requests":0.03},"virtiofsd":{"median_seconds":5,"requests":35000,"server_cpu_s_per_1k_requests":0.025}},
  "cpu_per_1k_over_virtiofsd":{"virtiofs-tap":1.19},
  "cpu_per_1k_over_virtiofsd_by_round":{"virtiofs-tap":{"median":1.19,"min":1.1,"max":1.3,"rounds":[1,2,3,4],"ratios":[1.1,1.2,1.18,1.3]}},
  "cpu_ratio_of_medians":{"virtiofs-tap":1.2},
  "seconds_over_virtiofsd":{"virtiofs-tap":1},
  "seconds_over_virtiofsd_by_round":{"virtiofs-tap":{"median":1,"min":0.9,"max":1.1,"rounds":[1,2,3,4],"ratios":[0.9,1,1,1.1]}},
  "wall_ratio_of_medians":{"virtiofs-tap":1}}]}`

// TestGuestJudgedOnPairedRatios: a file with per-round ratios is judged
// on their medians, shown with their spread (and the rounds, where a
// failed boot left fewer) beside the ratios of medians; the heading says
// how many rounds.
func TestGuestJudgedOnPairedRatios(t *testing.T) {
	out, errs := run(t, map[string]string{"guest.json": guestPairedFixture})
	if len(errs) != 1 || !strings.Contains(errs[0], "no such file") {
		t.Fatalf("errors = %q (want only fuse.json missing)", errs)
	}
	for _, want := range []string{
		"4 runs (memory-large in the first 2);",
		"judged on the median of per-round ratios over 4 rounds [min–max over the rounds]",
		"| workload | krunbench CPU ms/1k req | virtiofsd CPU ms/1k req | CPU/1k ratio (≤0.8) | | of medians | total CPU ratio | krunbench s | virtiofsd s | wall ratio (≤1.0) | | of medians |",
		"| stat | 500.0 (100 req) | 570.0 (100 req) | 0.75x [0.75–1.35] | met | 0.88x | 0.75x | 4.79 | 4.32 | 0.95x [0.95–1.43] | met | 1.11x |",
		"| read | 100.0 (2056 req) | 130.0 (2056 req) | 0.77x [0.70–0.90] (3 rounds) | met | – | – | 3.30 | 3.40 | 0.97x [0.90–1.10] (3 rounds) | met | – |",
		"| create | 30.0 (30000 req) | 25.0 (35000 req) | 1.19x [1.10–1.30] | **missed** | 1.20x | – | 5.00 | 5.00 | 1.00x [0.90–1.10] | met | 1.00x |",
		"| stat | 2000.0 (10 req) | 3.10x | 0.31x | 2.50 | 0.60x |",
		"missed: guest create CPU per 1k requests 1.19x virtiofsd (median of 4 per-round ratios; target ≤ 0.8x)",
		"5 targets met, 1 missed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "no per-round ratios") {
		t.Errorf("a file with per-round ratios was summarised as an old one:\n%s", out)
	}
}

// TestOldGuestFileFallsBack: a real guest.json from before guestbench
// took ratios within rounds (testdata: the one committed at 76eab17,
// session 14's judged run) still reads with the shared schema, refusing
// unknown fields, and is summarised on its ratios of medians, the table
// and the verdicts saying so.
func TestOldGuestFileFallsBack(t *testing.T) {
	path := filepath.Join("testdata", "guest-session14.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r results.GuestFile
	if err := results.DecodeStrict(b, &r); err != nil {
		t.Fatalf("the schema no longer reads an old file: %v", err)
	}
	if guestPaired(&r) {
		t.Fatal("the old file is taken for one with per-round ratios")
	}
	var out bytes.Buffer
	s := &summary{w: &out}
	if err := s.guest(path); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"This file has no per-round ratios (written before guestbench took them): the ratios are of the two modes' medians over 2 boots each.",
		"| stat | 44.1 (14859 req) | 31.6 (14859 req) | 1.39x | **missed** | 1.39x | 5.15 | 3.81 | 1.35x | **missed** |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
	if judged := strings.Join(append(s.met, s.missed...), "\n"); !strings.Contains(judged, "guest stat CPU per 1k requests 1.39x virtiofsd (ratio of medians; target ≤ 0.8x)") {
		t.Errorf("the old file's verdicts do not say they judge ratios of medians:\n%s", judged)
	}
}

func TestOldGuestSchemaAndBadFilesAreClearErrors(t *testing.T) {
	_, errs := run(t, map[string]string{
		"fuse.json":  "{not json",
		"guest.json": `{"workloads":[{"name":"stat","modes":{"9p":{},"virtiofs-tap":{}}}]}`,
	})
	if len(errs) != 2 || !strings.Contains(errs[0], "not a results file") || !strings.Contains(errs[1], "no virtiofsd mode") {
		t.Fatalf("errors = %q", errs)
	}
}

func TestTunedRunIsShownNotJudged(t *testing.T) {
	tuned := strings.Replace(fuseFixture, `"settings":"default"`, `"settings":"tuned"`, 1)
	out, errs := run(t, map[string]string{"fuse.json": tuned})
	if len(errs) != 1 || !strings.Contains(errs[0], "no such file") {
		t.Fatalf("errors = %q (want only guest.json missing)", errs)
	}
	if !strings.Contains(out, "| 1.25x [1.20–1.30] | (not judged) |") || !strings.Contains(out, "0 targets met, 0 missed.") {
		t.Errorf("a tuned run was judged:\n%s", out)
	}
}

// TestCommittedSummaryRegenerates: summary over the committed JSON in
// bench/results writes the committed summary.md byte for byte (make
// bench-session writes both from one run), so a change to summary's
// tables or to the schema it reads with shows here.
func TestCommittedSummaryRegenerates(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "results", "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if !summarise(&out, filepath.Join("..", "results"), "fuse.json", "fuse-tuned.json", "guest.json", "tui.json", "boot.json") {
		t.Fatal("a committed file could not be read")
	}
	if d := results.FirstDiff(out.Bytes(), want); d != "" {
		t.Fatalf("summary.md %s (regenerate it: cd bench && go run ./summary >results/summary.md)", d)
	}
}

// TestTableHeaderOnlyWithRows: a table prints its intro, header and
// separator (one --- per column, empty header cells counted) before its
// first row, and nothing without rows unless started.
func TestTableHeaderOnlyWithRows(t *testing.T) {
	var out bytes.Buffer
	newTable(&out, "intro", "| a | |").row("| %d | x |", 1)
	newTable(&out, "never shown", "| b |")
	newTable(&out, "", "| c |").start().start()
	if want := "\nintro\n\n| a | |\n|---|---|\n| 1 | x |\n\n| c |\n|---|\n"; out.String() != want {
		t.Fatalf("tables wrote %q, want %q", out.String(), want)
	}
}

// The mixed row's phase split shows when the samples carry it (fusebench
// mixed.go), and only then: the committed summary of older runs stays.
func TestMixedPhasesShowWhenRecorded(t *testing.T) {
	out, _ := run(t, map[string]string{"fuse.json": fuseFixture})
	if strings.Contains(out, "by the writer's phase") {
		t.Errorf("a run without phases printed the phase table:\n%s", out)
	}
	phased := strings.Replace(fuseFixture, `"under_writer_p99_us":250}`,
		`"under_writer_p99_us":250,"write_phase_p99_us":400,"write_phase_calls":30,"write_phase_s":0.8,"fsync_phase_p99_us":110,"fsync_phase_calls":70,"slow_calls_runq_pct":24}`, 1)
	out, _ = run(t, map[string]string{"fuse.json": phased})
	if want := "| tap | 400 | 110 | 30% | 0.80 | 24% |"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q\n%s", want, out)
	}
	// A run without -mixed-runq did not measure the runqueue share: no 0%.
	out, _ = run(t, map[string]string{"fuse.json": strings.Replace(phased, `,"slow_calls_runq_pct":24`, "", 1)})
	if want := "| tap | 400 | 110 | 30% | 0.80 | – |"; !strings.Contains(out, want) {
		t.Errorf("a run without runq numbers: output lacks %q\n%s", want, out)
	}
}
