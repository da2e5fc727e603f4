package fuse

import "fmt"

// ReaddirplusMode is how the server offers READDIRPLUS at INIT, which
// decides how the client lists directories and so the mix of requests a
// directory walk sends:
//
//   - ReaddirplusAlways (the zero value, krunbench's default): DO_READDIRPLUS
//     alone. Every chunk of every directory comes as READDIRPLUS, whose
//     entries carry an EntryOut, so a walker that stats what it lists
//     needs no LOOKUPs.
//   - ReaddirplusAuto: DO_READDIRPLUS and READDIRPLUS_AUTO, what libfuse
//     and QEMU's virtiofsd offer. The kernel asks for READDIRPLUS for a
//     directory's first chunk and after a LOOKUP in it, plain READDIR
//     otherwise; a find that reads a whole directory before statting it
//     then sends a LOOKUP per entry past the first chunk.
//   - ReaddirplusOff: neither. Plain READDIR, a LOOKUP per entry statted.
//
// A client is free to ignore the offer; the server answers READDIRPLUS
// and READDIR whatever it offered.
type ReaddirplusMode uint8

const (
	ReaddirplusAlways ReaddirplusMode = iota
	ReaddirplusAuto
	ReaddirplusOff
)

// ReaddirplusModes are the modes' names, as ParseReaddirplusMode takes
// them and String gives them.
var ReaddirplusModes = []string{"always", "auto", "off"}

func (m ReaddirplusMode) String() string {
	if int(m) < len(ReaddirplusModes) {
		return ReaddirplusModes[m]
	}
	return fmt.Sprintf("ReaddirplusMode(%d)", uint8(m))
}

// ParseReaddirplusMode reads "always", "auto" or "off".
func ParseReaddirplusMode(s string) (ReaddirplusMode, error) {
	for i, name := range ReaddirplusModes {
		if s == name {
			return ReaddirplusMode(i), nil
		}
	}
	return 0, fmt.Errorf("readdirplus mode %q: want always, auto or off", s)
}

// apply sets offer's READDIRPLUS bits as the mode says.
func (m ReaddirplusMode) apply(offer uint32) uint32 {
	offer &^= InitDoReaddirplus | InitReaddirplusAuto
	switch m {
	case ReaddirplusAuto:
		return offer | InitDoReaddirplus | InitReaddirplusAuto
	case ReaddirplusOff:
		return offer
	}
	return offer | InitDoReaddirplus
}
