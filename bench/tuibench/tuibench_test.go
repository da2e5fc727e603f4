package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	schema "github.com/krunbench/krunbench/bench/internal/results"
)

// screen is a capture of the TUI at 120x40 during the flood, cut to the
// lines that matter.
const screen = `╭─ library ────────────────────────────╮╭─ console ───────────────────────────────────────────────────── enter: attach ╮
│root filesystems                      ││krun-init: milestone mounted╔════════════════════════════════════════════════╗│
│● ✓ ok   tuibench                     ││krun-init: image 2728098 byt║ debug                                          ║│
│init payloads                         ││66c4║ frame     10.129ms (p50 312µs, p99 1.5ms, avg 7.535ms, max 61.317ms) ║│
│● ✓ ok   krun-init (default)          ││krun║ frames    3164 · 14/s · panes 2 drawn, 3 reused                      ║│
│  ✓ ok   shell-template               ││krun║ update    927µs                                                      ║│
│  ✓ ok   exit-at-once                 ││    ║ batches   3141 (last 0 events)                                       ║│
│kernels                               ││    ║ events    2726 seen, 2225 kept · 85/s                                ║│
│                                      ││    ║ backlog   12.5ms (max 40ms in 1s)                                    ║│
│● ✓ ok   bzImage                      ││Busy║ dropped   3 events, 17 console bytes                                 ║│
│                                      ││    ║           2 by the subscription, 1 by the buffer                     ║│
╭─ stats ──────────────────────────────╮│/ # /tuibench.sh            ║ goroutines 28                                  ║│
│requests 2726  errors 17  bytes 24.9M…││TUIBENCH done 50051 real 54.╚════════════════════════════════════════════════╝│
│                                      ││2726 requests · o op  / path  e errors                                        │
 krunbench · qemu · tcg · 1 vCPU · 512 MiB · running                                                 dropped 3 · ? help
`

func TestParseOverlay(t *testing.T) {
	o := parseOverlay(screen)
	want := overlayStats{Seen: true, LastMs: 10.129, P50Ms: 0.312, P99Ms: 1.5, AvgMs: 7.535, MaxMs: 61.317, Frames: 3164, FPS: 14,
		UpdateMs: 0.927, Batches: 3141, Events: 2726, Kept: 2225, EventsPerS: 85, BacklogMs: 12.5, BacklogMaxMs: 40,
		Dropped: 3, SubDropped: 2, BufferDropped: 1, ConsoleDropped: 17, Requests: 2726}
	if o != want {
		t.Fatalf("got %+v\nwant %+v", o, want)
	}
	if o := parseOverlay(strings.ReplaceAll(screen, "requests · ", "")); o.Requests != -1 {
		t.Fatalf("no traffic footer: requests %d, want -1", o.Requests)
	}
}

func TestParseResult(t *testing.T) {
	var s sample
	if err := parseResult("50051 real 41.25 user 0.51 sys 38.82 \n", &s); err != nil {
		t.Fatal(err)
	}
	if s.Found != 50051 || s.Seconds != 41.25 || s.GuestUser != 0.51 || s.GuestSys != 38.82 {
		t.Fatalf("got %+v", s)
	}
	if err := parseResult("sh: find: not found real 0.00 user 0.00 sys 0.00", &s); err == nil {
		t.Fatal("want an error for a failed workload")
	}
}

func TestFloodNumbers(t *testing.T) {
	u := &uiStats{
		Start: overlayStats{Frames: 100, AvgMs: 2, MaxMs: 20},
		End:   overlayStats{Frames: 300, AvgMs: 4, MaxMs: 30, Events: 50, Dropped: 2},
		Samples: []screenSample{
			{Requests: 10}, {Requests: 20}, {Requests: 20}, {Requests: 40},
		},
	}
	u.finish(10)
	if u.FloodFrames != 200 || u.FloodFPS != 20 || u.FloodAvgMs != 5 || !u.MaxInFlood || u.FloodDrops != 2 {
		t.Fatalf("got %+v", u)
	}
	if u.Intervals != 3 || u.Rises != 2 || u.KeepsRedrawing {
		t.Fatalf("redraws: %d/%d, keeps %v", u.Rises, u.Intervals, u.KeepsRedrawing)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/tmp/a-b_c.d": "/tmp/a-b_c.d", "a b": "'a b'", "it's": `'it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestCompareFuseReadsBothSchemas: fusebench's tap_overhead_pct was a
// number per row and is now a median with quartiles taken within rounds;
// the TUI's overhead is compared with the stat row's either way.
func TestCompareFuseReadsBothSchemas(t *testing.T) {
	for name, body := range map[string]string{
		"number": `{"workloads":[{"name":"stat","tap_overhead_pct":3.5}]}`,
		"paired": `{"workloads":[{"name":"stat","tap_overhead_pct":{"median":3.5,"p25":1,"p75":6,"rounds":6}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fuse.json")
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &results{TUI: schema.TUI[*sample]{Modes: []*modeResult{{Name: modeTUI, OverheadPct: ptr(2.0)}}}}
			r.compareFuse(path)
			c := r.Fuse
			if !c.Present || c.BoundPct == nil || *c.BoundPct != 3.5 || c.Pass == nil || !*c.Pass {
				t.Fatalf("comparison = %+v (note %q)", c, c.Note)
			}
		})
	}
}

// TestCompareFuseReadsTheCommittedFile: the fusebench file in
// bench/results, read with bench/internal/results, gives the stat row's
// tap overhead as the bound.
func TestCompareFuseReadsTheCommittedFile(t *testing.T) {
	path := filepath.Join("..", "results", "fuse.json")
	r := &results{TUI: schema.TUI[*sample]{Modes: []*modeResult{{Name: modeTUI, OverheadPct: ptr(2.0)}}}}
	r.compareFuse(path)
	c := r.Fuse
	if !c.Present || c.BoundPct == nil || c.Date == "" || c.Commit == "" {
		t.Fatalf("comparison = %+v (note %q)", c, c.Note)
	}
	if got, want := *c.BoundPct, c.TapOverheadPct[fuseRow]; got != want || len(c.TapOverheadPct) < 2 {
		t.Fatalf("bound %v, want the %s row's %v of %v", got, fuseRow, want, c.TapOverheadPct)
	}
}
