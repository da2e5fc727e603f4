package session

import (
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
)

// TestTapRingIsSmall: the session's tap keeps 256 recent events
// (trace.DefaultRingSize, which was 65,536, 16 MiB): run and the TUI read
// the tap through subscriptions (the traffic pane, --trace files) and its
// counters, never its ring. Past 256 served requests the ring has
// overwritten the rest, and Recent holds the latest ones.
func TestTapRingIsSmall(t *testing.T) {
	const ringEvents = 256
	cfg := testConfig(t, fakeImage(t))
	cfg.Engine = EngineQEMU
	fs, err := startFS(&cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	const served = ringEvents + 44
	for i := range served {
		fs.tap.Observe(&fuse.Served{Opcode: fuse.OpGetattr, Unique: uint64(i + 1), Nodeid: 1})
	}
	if got := fs.tap.Overwritten(); got != served-ringEvents {
		t.Fatalf("after %d requests the ring overwrote %d, want %d (a ring of %d)", served, got, served-ringEvents, ringEvents)
	}
	recent := fs.tap.Recent(0)
	if len(recent) != ringEvents || recent[len(recent)-1].Unique != served {
		t.Fatalf("Recent holds %d events ending at unique %d, want %d ending at %d", len(recent), recent[len(recent)-1].Unique, ringEvents, served)
	}
}
