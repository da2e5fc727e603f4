package virtiofs_test

import (
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// TestDeviceRequestAllocs bounds the heap allocations of one GETATTR
// through the device as a guest's find sends it (a kick, the chain
// popped, served, completed, a notification): 14 before chainPool (a
// chain and its two buffer lists for the request, one more chain for the
// empty pop that ends the drain, errors.As's target for each pop), 4
// after, the test driver's and the kick's; the bound leaves room for
// the scheduling to vary.
func TestDeviceRequestAllocs(t *testing.T) {
	r := newRig(t, nil)
	r.kickRoundTrip(fusetest.Request(fuse.OpInit, 1, 0, fuse.InitIn{Major: 7, Minor: 37}, [44]byte{}))
	getattr := fusetest.Request(fuse.OpGetattr, 2, 1, fuse.GetAttrIn{})
	for range 100 {
		r.kickRoundTrip(getattr) // warm the pools
	}
	n := testing.AllocsPerRun(500, func() { r.kickRoundTrip(getattr) })
	t.Logf("%v allocations per GETATTR", n)
	if n > 8 {
		t.Errorf("%v allocations per GETATTR through the device, want at most 8", n)
	}
}
