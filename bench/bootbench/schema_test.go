package main

import (
	"reflect"
	"testing"

	"github.com/krunbench/krunbench/bench/internal/results"
)

// TestWrittenFileReadsBack: the committed boot.json, read as summary
// reads it (bench/internal/results, refusing any field the reader does
// not declare) and written again by bootbench's writer, comes out byte
// for byte as it went in; and summarize, given the file's samples, gives
// the file's medians, failures, ratio and verdict.
func TestWrittenFileReadsBack(t *testing.T) {
	var read results.Boot
	want, err := results.ReadCommitted("boot.json", &read)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Samples) == 0 {
		t.Fatal("no samples: not a full run")
	}
	if err := results.SameAfterWrite(want, func(path string) error { return write(path, &read) }); err != nil {
		t.Fatalf("written again, boot.json %v", err)
	}
	s := summarize(read.Samples)
	if !reflect.DeepEqual(s.MedianMs, read.MedianMs) || !reflect.DeepEqual(s.Failed, read.Failed) || s.ExitRatio != read.ExitRatio || s.Target != read.Target {
		t.Fatalf("summarize(the file's samples) = %+v, the file has %+v", s, read)
	}
}
