package main

import (
	"testing"

	"github.com/krunbench/krunbench/bench/internal/cli"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// TestWrittenFileReadsBack: the committed tui.json, read as summary reads
// it (bench/internal/results, refusing any field the reader does not
// declare; samples raw), its samples then read as tuibench's own (also
// refusing undeclared fields), and written again by tuibench's writer,
// comes out byte for byte as it went in.
func TestWrittenFileReadsBack(t *testing.T) {
	var read schema.TUIFile
	want, err := schema.ReadCommitted("tui.json", &read)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Modes) == 0 || read.Fuse == nil {
		t.Fatalf("read %d modes, fuse comparison %v: not a full run", len(read.Modes), read.Fuse)
	}
	r := &results{TUI: schema.TUI[*sample]{Machine: read.Machine, Config: read.Config, Fuse: read.Fuse, Notes: read.Notes, ElapsedS: read.ElapsedS}}
	for _, m := range read.Modes {
		w := &modeResult{Name: m.Name, Label: m.Label, Desc: m.Desc, Median: m.Median, Min: m.Min, Max: m.Max, SpreadPct: m.SpreadPct,
			HostMedian: m.HostMedian, HostOverheadPct: m.HostOverheadPct, KrunbenchCPU: m.KrunbenchCPU, QEMUCPU: m.QEMUCPU,
			OverheadPct: m.OverheadPct, UI: m.UI}
		for _, raw := range m.Samples {
			s := new(sample)
			if err := schema.DecodeStrict(raw, s); err != nil {
				t.Fatalf("mode %s: a sample tuibench cannot read back: %v", m.Name, err)
			}
			w.Samples = append(w.Samples, s)
		}
		r.Modes = append(r.Modes, w)
	}
	if err := schema.SameAfterWrite(want, func(path string) error { return cli.WriteJSON(path, r) }); err != nil {
		t.Fatalf("written again, tui.json %v", err)
	}
}
