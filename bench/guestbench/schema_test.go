package main

import (
	"testing"

	"github.com/krunbench/krunbench/bench/internal/cli"
	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// TestWrittenFileReadsBack: the committed guest.json, read as summary
// reads it (bench/internal/results, refusing any field the reader does
// not declare), then written again by guestbench's writer from what was
// read, comes out byte for byte as it went in: every field guestbench
// writes is one its readers declare, and guestbench's mode declares
// results.GuestMode's fields under the same names.
func TestWrittenFileReadsBack(t *testing.T) {
	var read schema.GuestFile
	want, err := schema.ReadCommitted("guest.json", &read)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Rows) == 0 || len(read.Modes) == 0 {
		t.Fatalf("read %d rows and %d modes: not a full run", len(read.Rows), len(read.Modes))
	}
	r := &results{Guest: schema.Guest[*mode]{
		Label: read.Label, Machine: read.Machine, Config: read.Config, Rows: read.Rows,
		Boots: read.Boots, Targets: read.Targets, Elapsed: read.Elapsed,
	}}
	for _, m := range read.Modes {
		r.Modes = append(r.Modes, &mode{Name: m.Name, Label: m.Label, Desc: m.Desc, Server: m.Server, Counting: m.Counting, Features: m.Features})
	}
	if err := schema.SameAfterWrite(want, func(path string) error { return cli.WriteJSON(path, r) }); err != nil {
		t.Fatalf("written again, guest.json %v", err)
	}
}
