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
// sample's page caches, and its timed part fills new ones. Whether the
// pages it takes are still backed by the hypervisor or were handed back
// and must be faulted in again depended on how much the previous sample
// left to free and on how long the servers took to settle, which no
// server controls. MEASURED (this machine, host only, 512 MiB cold read
// after a drop, python, 3 each): started at once 0.08-0.16 s, 0.03-0.11 s
// CPU; 1 s after the drop 0.10-0.40 s; 2-3 s after 0.37-0.66 s,
// 0.25-0.65 s CPU (384-480 MiB reported meanwhile: the kernel's
// page_reporting counter moved about 1 s after the drop). Touching and
// freeing memory just before the read settles it only when that memory
// is several times what the read takes: 1.5 GiB left the read at
// 0.11-0.34 s (0.04-0.28 s CPU, 9 samples), 2, 3 and 4 GiB gave
// 0.10-0.13 s and 0.037-0.044 s CPU in all 24 samples, whether taken at
// once, 1 s after the drop or once the counter had not moved for 2.5 s.
// Waiting for the reporting to go quiet, so that every page is faulted
// in again as after an idle, was no method here: the wait took 5-8 s,
// and in 6 of 21 tries on the shared machine the counter did not stay
// still for 2.5 s within 15 s.
//
//   - backed (the default): touch and free prefault(w) of anonymous
//     memory right before the timed part, so the pages the sample takes
//     are backed whatever the previous sample and the settle left.
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
const reportedKiBPath = "/sys/module/page_reporting/parameters/reported_kib"

const (
	// prefaultPerByte: backed touches this many times what the timed
	// part fills in page caches (MEASURED above: 3x was not enough, 4x
	// was), and at least prefaultMin for rows that fill little.
	prefaultPerByte = 4
	prefaultMin     = 512 << 20
)

// reportedKiB is the memory reported so far, -1 without the counter.
func reportedKiB() int64 {
	b, err := os.ReadFile(reportedKiBPath)
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
// timed part; little (dentries, inodes) for the others.
func footprint(cfg *config, row string) int64 {
	switch strings.TrimSuffix(row, "-warm") {
	case "write", "read":
		return 2 * cfg.size
	case "read-hostwarm":
		return cfg.size
	case rowMixed:
		return 2 * cfg.mixedSize
	case rowParRead:
		return int64(cfg.clients) * int64(cfg.concReads) * 4096
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
// timed part of row: it prefaults as the mode says and records the state
// the timed part starts in.
func (c *coldMemory) ready(s *coldState, row string) error {
	if c.reporting && c.mode == coldBacked {
		n := c.prefault(row)
		t := time.Now()
		b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("prefault %d MiB: %w", n>>20, err)
		}
		if err := unix.Munmap(b); err != nil {
			return err
		}
		s.mem.PrefaultMiB, s.mem.PrefaultMs = n>>20, ms(time.Since(t))
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

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// memoryNote is a sample's memory state for the progress line.
func memoryNote(m *schema.SampleMemory) string {
	if m == nil || m.ReportedKiBBefore < 0 {
		return ""
	}
	return fmt.Sprintf("  reported %d/%d MiB, drop +%.1fs, prefault %d MiB %.1fs", m.ReportedKiBBefore>>10, m.ReportedKiBDuring>>10, m.SinceDropMs/1e3, m.PrefaultMiB, m.PrefaultMs/1e3)
}

// coldMemoryDesc says in the JSON what each mode did.
var coldMemoryDesc = map[string]string{
	coldAsIs:   "nothing more: the timed part starts once the servers are idle",
	coldBacked: "right before the timed part, touch and free 4x what it fills in page caches (at least 512 MiB) of anonymous memory, so that the pages it takes are backed by the hypervisor whatever the previous sample left (memory.prefault_mib per sample)",
}
