package fuse

import "testing"

// TestReaddirplusModeOffer: each mode's INIT offer has exactly its
// READDIRPLUS bits and leaves every other offered bit alone; names
// round-trip and unknown ones are refused.
func TestReaddirplusModeOffer(t *testing.T) {
	const rdp = InitDoReaddirplus | InitReaddirplusAuto
	want := map[ReaddirplusMode]uint32{
		ReaddirplusAlways: InitDoReaddirplus,
		ReaddirplusAuto:   InitDoReaddirplus | InitReaddirplusAuto,
		ReaddirplusOff:    0,
	}
	for mode, bits := range want {
		for _, base := range []uint32{Offered, Offered | InitReaddirplusAuto, Offered &^ InitDoReaddirplus} {
			s := NewServer(nil, Options{Offer: base, Readdirplus: mode})
			if got := s.offer & rdp; got != bits {
				t.Errorf("%s over %#x: READDIRPLUS bits %#x, want %#x", mode, base, got, bits)
			}
			// A nil filesystem handles no killpriv (server.go drops it).
			if s.offer&^rdp != base&^rdp&^InitHandleKillprivV2 {
				t.Errorf("%s over %#x: other bits changed to %#x", mode, base, s.offer&^rdp)
			}
		}
		back, err := ParseReaddirplusMode(mode.String())
		if err != nil || back != mode {
			t.Errorf("ParseReaddirplusMode(%q) = %v, %v", mode.String(), back, err)
		}
	}
	for _, bad := range []string{"", "Always", "on", "sometimes"} {
		if _, err := ParseReaddirplusMode(bad); err == nil {
			t.Errorf("ParseReaddirplusMode(%q) accepted", bad)
		}
	}
}
