package main

import (
	"runtime/debug"
	"testing"
)

// TestServeGCPercent: serve runs its heap at serveGCPercent, unless GOGC
// in the environment says otherwise.
func TestServeGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if got := tuneServeGC(func(string) string { return "" }); got != serveGCPercent {
		t.Fatalf("tuneServeGC = %d, want %d", got, serveGCPercent)
	}
	if got := debug.SetGCPercent(100); got != serveGCPercent {
		t.Fatalf("GC percent in force %d, want %d", got, serveGCPercent)
	}
	env := func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}
	if got := tuneServeGC(env); got != 100 {
		t.Fatalf("with GOGC set, tuneServeGC = %d, want the runtime's 100", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set, GC percent in force %d, want 100", got)
	}
}
