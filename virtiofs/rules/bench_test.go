package rules

import (
	"fmt"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/fuse/fusetest"
)

// BenchmarkRules measures the per-request cost of the rules engine on the
// real server stack (passthrough over a temporary directory): no hook at
// all, an engine with no rules, and 100 rules none of which fire, half
// naming LOOKUP with a path glob (so every LOOKUP resolves its path and
// tries 50 globs), half faults on other opcodes. The difference between the
// sub-benchmarks is the engine's cost; `make bench` is where claims come
// from, this is the microscope.
func BenchmarkRules(b *testing.B) {
	hundred := make([]string, 0, 100)
	for i := range 50 {
		hundred = append(hundred, fmt.Sprintf("break LOOKUP /dir%d/*", i))
		hundred = append(hundred, fmt.Sprintf("fault OPEN,READ /lib/lib%d.so* EIO", i))
	}
	for _, bc := range []struct {
		name  string
		hook  bool
		rules []string
	}{
		{"no-hook", false, nil},
		{"engine-0-rules", true, nil},
		{"100-rules", true, hundred},
	} {
		for _, name := range []string{"GETATTR", "LOOKUP"} {
			b.Run(bc.name+"/"+name, func(b *testing.B) {
				s := newStackHook(b, bc.hook, bc.rules...)
				etc, _ := s.lookup(fuse.RootID, "etc")
				req := fusetest.Request(fuse.OpGetattr, 99, etc, fuse.GetAttrIn{})
				if name == "LOOKUP" {
					req = fusetest.Request(fuse.OpLookup, 99, etc, "passwd")
				}
				in := make([][]byte, 1)
				out := [][]byte{make([]byte, 4096)}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					in[0] = req // the server advances its view of the buffers
					if _, ok := s.srv.Serve(in, out); !ok {
						b.Fatal("no reply")
					}
				}
			})
		}
	}
}
