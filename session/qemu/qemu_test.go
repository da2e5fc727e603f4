package qemu

import (
	"strings"
	"testing"
)

func TestTSCFromCPUInfo(t *testing.T) {
	cases := map[string]int{
		"processor\t: 0\ncpu MHz\t\t: 2596.148\n":  2596148,
		"processor\t: 0\nmodel name\t: x\n":        fallbackTSCkHz,
		"cpu MHz\t\t: nonsense\n":                  fallbackTSCkHz,
		"cpu MHz\t\t: 5.0\n":                       fallbackTSCkHz,
		"cpu MHz : 1800.000\ncpu MHz : 3000.000\n": 1800000,
	}
	for info, want := range cases {
		if got := tscFromCPUInfo(info); got != want {
			t.Errorf("%q: %d, want %d", info, got, want)
		}
	}
	if p := TCGParams(); len(p) != 1 || !strings.HasPrefix(p[0], "tsc_early_khz=") {
		t.Fatalf("TCGParams() = %q", p)
	}
}
