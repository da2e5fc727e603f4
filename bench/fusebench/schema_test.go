package main

import (
	"testing"

	"github.com/krunbench/krunbench/bench/internal/cli"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// TestWrittenFileReadsBack: the committed fusebench files, read as
// summary and tuibench read them (bench/internal/results, refusing any
// field the reader does not declare), then written again by fusebench's
// writer from what was read, come out byte for byte as they went in. So
// every field fusebench writes is one its readers declare, and the
// readers' types hold everything the writer needs.
func TestWrittenFileReadsBack(t *testing.T) {
	for _, name := range []string{"fuse.json", "fuse-tuned.json"} {
		t.Run(name, func(t *testing.T) {
			var read schema.FuseFile
			want, err := schema.ReadCommitted(name, &read)
			if err != nil {
				t.Fatal(err)
			}
			if len(read.Rows) == 0 || len(read.Modes) == 0 {
				t.Fatalf("read %d rows and %d modes: not a full run", len(read.Rows), len(read.Modes))
			}
			r := &results{Fuse: schema.Fuse[*mode, *row]{
				Machine: read.Machine, Config: read.Config, Label: read.Label, Settings: read.Settings,
				Memory: read.Memory, Skipped: read.Skipped, Traces: read.Traces, Targets: read.Targets, Elapsed: read.Elapsed,
			}}
			for _, m := range read.Modes {
				r.Modes = append(r.Modes, &mode{Name: m.Name, Label: m.Label, Desc: m.Desc, Argv: m.Argv, Mount: m.Mount})
			}
			for _, x := range read.Rows {
				w := &workload{Name: x.Name, Title: x.Title, Unit: x.Unit, Desc: x.Desc}
				r.Rows = append(r.Rows, &row{workload: w, RowStats: x.RowStats})
			}
			if err := schema.SameAfterWrite(want, func(path string) error { return cli.WriteJSON(path, r) }); err != nil {
				t.Fatalf("written again, %s %v", name, err)
			}
		})
	}
}
