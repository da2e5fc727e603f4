package main

import (
	"testing"
	"time"
)

// TestNoRatioAgainstAFailedWalk: on the 15,000-file memory row both
// backends walked everything and the RSS ratio is taken and judged; on
// memory-large virtiofsd's walk failed lookups (past its RLIMIT_NOFILE),
// so its RSS, CPU and time are for fewer inodes and no ratio is taken.
func TestNoRatioAgainstAFailedWalk(t *testing.T) {
	ours := &mode{Name: modeTap, krunbench: true}
	peer := &mode{Name: modeVirtiofsd}
	sample := func(rss int64, failed int) measure {
		return measure{Value: 1, Seconds: 1, Units: 1, ServerCPU: 1, ServerRSSKiB: rss, FilesFailed: failed}
	}
	r := &results{}
	r.Modes = []*mode{ours, peer}
	r.Rows = []*row{
		{Name: "memory", Modes: map[string]*series{
			modeTap:       {Samples: []measure{sample(2000, 0)}},
			modeVirtiofsd: {Samples: []measure{sample(1000, 0)}},
		}},
		{Name: "memory-large", Modes: map[string]*series{
			modeTap:       {Samples: []measure{sample(4000, 0)}},
			modeVirtiofsd: {Samples: []measure{sample(1000, 125)}},
		}},
	}
	r.finish(time.Second)
	if got := r.Rows[0].RSSRatio[modeTap]; got != 2 {
		t.Errorf("memory RSS ratio = %v, want 2", got)
	}
	if ok, judged := r.Targets["rss_le_virtiofsd"].Rows[modeTap+" memory"]; !judged || ok {
		t.Errorf("memory RSS target: judged %v, met %v; want judged, missed", judged, ok)
	}
	large := r.Rows[1]
	if len(large.RSSRatio)+len(large.CPURatio)+len(large.WallRatio)+len(large.TotalCPURatio) != 0 {
		t.Errorf("memory-large against a failed walk has ratios: rss %v cpu %v wall %v total %v",
			large.RSSRatio, large.CPURatio, large.WallRatio, large.TotalCPURatio)
	}
}
