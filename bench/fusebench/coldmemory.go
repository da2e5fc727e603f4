package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// Cold memory (-cold-memory): the state of the machine's free memory
// when a sample's timed part starts, with free page reporting left on
// (default settings; memory.go explains the reporting, and what the tuned
// settings do instead).
//
// Every sample starts with a cache drop that frees the previous
// sample's page caches, and its timed part fills new ones. How much of
// what it takes is still backed by the hypervisor, and whether a
// reporting pass runs during it, depended on the previous sample (a
// read's first sample in a round came after a stat, which left little to
// free, and paid) and on timing, which no server controls. MEASURED on
// this machine (its kernel counts reporting: reported_kib, passes):
//
//   - A pass runs 2 s after freed memory asks for one, hands the
//     hypervisor up to 512 MiB in about 0.15 s, and repeats every 2.05 s
//     while unreported free memory is left (after 4 GiB freed: passes at
//     1.6-2.0, 3.8-4.3 and 5.9 s, 512 MiB each, in 4 of 4 tries).
//   - Host only, 512 MiB cold read after a drop (python, 3 each): at once
//     0.08-0.16 s, 0.03-0.11 s CPU; 2-3 s after 0.37-0.66 s and
//     0.25-0.65 s CPU. Touching and freeing memory first helped only in
//     amounts well above what the read takes: after 1.5 GiB 0.11-0.34 s,
//     after 2-4 GiB 0.10-0.13 s and 0.037-0.044 s CPU in 24 of 24.
//   - fusebench -workloads read,stat -modes host,tap,go-fuse,
//     passthrough_hp -runs 6, 4 GiB touched before each read sample:
//     every slow sample (host 0.28-0.41 s against 0.09-0.14, tap 0.31-0.46
//     against 0.14-0.21) had a pass during its timed part (324-512 MiB
//     reported), no fast one had.
//
// Waiting for reporting to go quiet, so that every page is faulted in
// again as after an idle, was no method here: the wait took 5-8 s, and
// in 6 of 21 tries on the shared machine the counter did not stay still
// for 2.5 s within 15 s.
//
//   - backed (the default): before the timed part, touch prefault(row)
//     of anonymous memory (at least 1 GiB) and hold it until a reporting
//     pass ends (the drop's freed memory starts them), then free it and
//     start: what the sample takes is backed whatever the previous
//     sample left, and the next pass is 2 s away, so a timed part
//     shorter than that meets none.
//   - as-is: start the timed part once the servers are idle after the
//     drop (the method before -cold-memory existed).
const (
	coldAsIs   = "as-is"
	coldBacked = "backed"
)

var coldModes = []string{coldBacked, coldAsIs}

// The kernel's free page reporting counters (this machine's kernel has
// them; mainline Linux has only page_reporting_order): reported_kib
// grows by what each reporting pass hands to the hypervisor. They are
// recorded per sample, not used to decide anything.
const (
	reportedKiBPath = "/sys/module/page_reporting/parameters/reported_kib"
	passesPath      = "/sys/module/page_reporting/parameters/passes"
)

const (
	// prefaultPerByte: backed touches this many times what the timed
	// part fills in page caches (MEASURED above: 3x was not enough, 4x
	// was), and at least prefaultMin for rows that fill little.
	prefaultPerByte = 4
	prefaultMin     = 1 << 30
	// passWait bounds the wait for the pass (one 2 s delay and margin).
	passWait = 3 * time.Second
)

// reportedKiB is the memory reported so far, -1 without the counter.
func reportedKiB() int64 { return readCounter(reportedKiBPath) }

// readCounter reads a number from path, -1 if it cannot.
func readCounter(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// coldMemory is the method chosen by -cold-memory.
type coldMemory struct {
	mode string
	// reporting: a bound balloon reports free pages; without one every
	// mode is as-is.
	reporting bool
	cfg       *config
}

func newColdMemory(cfg *config) *coldMemory {
	return &coldMemory{mode: cfg.coldMemory, reporting: len(reportingBalloons()) > 0, cfg: cfg}
}

// footprint is about what row's timed part fills in page caches: the
// file in the host's page cache and in the mount's for the sequential
// rows, the FUSE side alone where the host side was read before the
// timed part; little (dentries, inodes) for stat and create.
func footprint(cfg *config, row string) int64 {
	switch strings.TrimSuffix(row, "-warm") {
	case "write", "read":
		return 2 * cfg.size
	case "read-hostwarm":
		return cfg.size
	}
	return 0
}

// prefault is what backed touches before row's timed part: at most half
// of the memory available.
func (c *coldMemory) prefault(row string) int64 {
	n := max(prefaultPerByte*footprint(c.cfg, row), prefaultMin)
	if avail := availableMemory(); avail > 0 {
		n = min(n, avail/2)
	}
	return n &^ (1<<20 - 1)
}

// coldState follows one sample from its cache drop.
type coldState struct {
	dropped  time.Time
	kibDrop  int64
	kibStart int64
	mem      schema.SampleMemory
}

// dropped records the moment of the cache drop.
func (c *coldMemory) dropped() *coldState {
	return &coldState{dropped: time.Now(), kibDrop: reportedKiB()}
}

// ready runs after the drop and the servers' settle, right before the
// timed part of w: it prefaults as the mode says and records the state
// the timed part starts in. The concurrency rows are left as they are:
// the mixed row's writer runs past the 2 s between passes, and touching
// 4x its 2 GiB would add seconds to each of its samples.
func (c *coldMemory) ready(s *coldState, w *workload) error {
	if c.reporting && c.mode == coldBacked && !w.concurrent {
		n := c.prefault(w.Name)
		t := time.Now()
		b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("prefault %d MiB: %w", n>>20, err)
		}
		s.mem.PrefaultMiB, s.mem.PrefaultMs = n>>20, ms(time.Since(t))
		// Held while a pass runs, so that the pass hands back other free
		// memory, not this.
		t = time.Now()
		if passEnded() {
			s.mem.PassWaitMs = ms(time.Since(t))
		}
		if err := unix.Munmap(b); err != nil {
			return err
		}
	}
	s.kibStart = reportedKiB()
	s.mem.SinceDropMs = ms(time.Since(s.dropped))
	return nil
}

// finish records what was reported before and during the timed part.
func (s *coldState) finish() *schema.SampleMemory {
	s.mem.ReportedKiBBefore, s.mem.ReportedKiBDuring = -1, -1
	if end := reportedKiB(); s.kibDrop >= 0 && end >= 0 {
		s.mem.ReportedKiBBefore, s.mem.ReportedKiBDuring = s.kibStart-s.kibDrop, end-s.kibStart
	}
	return &s.mem
}

// passEnded waits until the kernel's reporting pass counter moves (a
// pass has ended), at most passWait; false if it did not or the kernel
// has no such counter.
func passEnded() bool {
	p0 := readCounter(passesPath)
	if p0 < 0 {
		return false
	}
	for start := time.Now(); time.Since(start) < passWait; {
		time.Sleep(5 * time.Millisecond)
		if readCounter(passesPath) != p0 {
			return true
		}
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// memoryNote is a sample's memory state for the progress line.
func memoryNote(m *schema.SampleMemory) string {
	if m == nil || m.ReportedKiBBefore < 0 {
		return ""
	}
	return fmt.Sprintf("  reported %d/%d MiB, drop +%.1fs, prefault %d MiB %.1fs, pass +%.1fs", m.ReportedKiBBefore>>10, m.ReportedKiBDuring>>10, m.SinceDropMs/1e3, m.PrefaultMiB, m.PrefaultMs/1e3, m.PassWaitMs/1e3)
}

// coldMemoryDesc says in the JSON what each mode did.
var coldMemoryDesc = map[string]string{
	coldAsIs:   "nothing more: the timed part starts once the servers are idle",
	coldBacked: "before the timed part, touch 4x what it fills in page caches (at least 1 GiB) of anonymous memory and hold it until a free page reporting pass ends (the kernel's page_reporting passes counter; at most 3 s), then free it and start: the pages the sample takes are backed by the hypervisor whatever the previous sample left, and the next pass is 2 s away (memory.prefault_mib, prefault_ms, pass_wait_ms per sample)",
}
