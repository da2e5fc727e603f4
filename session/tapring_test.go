package session

import (
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestTapRingIsSmall: the session's tap keeps tapRingEvents recent events,
// not trace.DefaultRingSize (65,536, 16 MiB): run and the TUI read the
// tap through subscriptions (the traffic pane, --trace files) and its
// counters, never its ring. Past tapRingEvents served requests the ring
// has overwritten the rest, and Recent holds the latest ones.
func TestTapRingIsSmall(t *testing.T) {
	cfg := testConfig(t, fakeImage(t))
	cfg.Engine = EngineQEMU
	fs, err := startFS(&cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	const served = tapRingEvents + 44
	for i := range served {
		fs.tap.Observe(&fuse.Served{Opcode: fuse.OpGetattr, Unique: uint64(i + 1), Nodeid: 1})
	}
	if got := fs.tap.Overwritten(); got != served-tapRingEvents {
		t.Fatalf("after %d requests the ring overwrote %d, want %d (a ring of %d)", served, got, served-tapRingEvents, tapRingEvents)
	}
	recent := fs.tap.Recent(0)
	if len(recent) != tapRingEvents || recent[len(recent)-1].Unique != served {
		t.Fatalf("Recent holds %d events ending at unique %d, want %d ending at %d", len(recent), recent[len(recent)-1].Unique, tapRingEvents, served)
	}
}
