package main

import (
	"slices"

	"github.com/krunbench/krunbench/bench/internal/hostinfo"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// The judged guest ratios (CPU per 1,000 requests, wall time) are taken
// within rounds, as fusebench's are: each round's krunbench boot against
// the virtiofsd boot of the same round (cli.Rotate's rounds, minutes
// apart), the median over the rounds judged, over 4 rounds in make
// bench-session. The ratio of the two modes' medians over 2 boots it
// replaced let one disturbed boot decide a row: in session 14's judged
// run krunbench's first boot ran disturbed (QEMU's own CPU 5.41 s for
// the stat walk against 3.62 s in its second boot and 3.21-3.51 s in
// virtiofsd's), and stat's CPU per 1k came out 1.39x virtiofsd's where
// the second boot alone gave 1.13x.
//
// What pairing cancels is what a round's boots meet alike: the machine
// drifting between rounds (other work starting, a quarter of an hour
// per run). It does not cancel a disturbance of one boot: in session
// 14's 4-boot rerun (49f1184, 22:33 UTC, not committed) round 1 had
// krunbench's QEMU CPU at 7.38 s for the stat walk and virtiofsd's at
// 3.87 s. There the two estimators differ both ways within the spread:
// CPU per 1k paired (median [min-max]) / ratio of medians: stat 1.35x
// [0.80-1.84] / 1.22x, read 1.33x [1.05-1.63] / 1.26x, create 1.25x
// [1.14-1.55] / 1.37x; wall stat 1.31x / 1.18x, create 0.95x / 1.03x.
// What keeps one boot from deciding a row is the number of rounds (a
// median of 4); the spread shows how little 4 boots of this machine can
// resolve.

// roundRatios is ours' value over peer's, round by round
// (GuestMeasure.Round), times scale, over the rounds where both have a
// sample and peer's value is positive: its median, min, max and each
// round's; nil when no round has both.
func roundRatios(ours, peer []measure, value func(measure) float64, scale float64) *schema.RoundRatios {
	peerOf := map[int]measure{}
	for _, p := range peer {
		peerOf[p.Round] = p
	}
	r := &schema.RoundRatios{}
	for _, o := range ours {
		p, ok := peerOf[o.Round]
		if !ok || value(p) <= 0 {
			continue
		}
		r.Rounds = append(r.Rounds, o.Round)
		r.Ratios = append(r.Ratios, scale*value(o)/value(p))
	}
	if len(r.Ratios) == 0 {
		return nil
	}
	r.Median, r.Min, r.Max = hostinfo.Median(r.Ratios), slices.Min(r.Ratios), slices.Max(r.Ratios)
	return r
}

func serverCPU(m measure) float64 { return m.ServerCPU }
func seconds(m measure) float64   { return m.Seconds }
